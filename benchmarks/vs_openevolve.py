"""evolve against OpenEvolve end to end, on the same toy campaigns, in the same run (issue 10).

    .venv/bin/python benchmarks/vs_openevolve.py                       # 4 settings x 2 tools x 2 reps
    .venv/bin/python benchmarks/vs_openevolve.py --settings a,d --reps 1 --tools evolve

A fake OpenAI-compatible model of fixed latency L (`evolve.testing.FakeOpenAIServer`, in this process)
and a toy evaluator of fixed cost E (a sleep, or CPU time in setting c), 100 iterations, 4 proposals and
4 evaluations at once (evolve: `llm.concurrency=4 ray.num_workers=4 ray.worker_cpus=0.5`; OpenEvolve:
`evaluator.parallel_evaluations=4`), everything else at each tool's defaults. OpenEvolve comes from
PyPI into its own virtualenv (`~/.cache/evolve-bench/openevolve-venv`, made on first use).

Per run: wall (command start to exit) = start-up (to the model's first chat request) + loop (to the
end of the last evaluation or reply, whichever is later) + exit tail (to the process's exit); iterations
per second over the loop; the peak summed RSS of the process tree (sampled every 0.1 s) and its peak
summed PSS (every 0.5 s; shared pages counted once: what the tree really holds). The ideal is
max(N L / proposals, N E / evaluation slots); loop efficiency is ideal / loop. For evolve, the start-up
is split by the fake server's log, Ray's driver log and campaign.log. Prints markdown tables with the
ratio evolve / OpenEvolve and the load average, and writes every measurement as JSON.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from process_tree import run_tree
from toy_campaign import Responder, read_times, write_evolve_problem, write_openevolve_files

from evolve.testing.fake_openai import FakeOpenAIServer

ROOT = Path(__file__).resolve().parent.parent
OPENEVOLVE_VERSION = "0.4.0"
OPENEVOLVE_VENV = Path.home() / ".cache" / "evolve-bench" / "openevolve-venv"
CHAT = "/chat/completions"


@dataclass(frozen=True)
class Setting:
    """One row of the issue: model latency, evaluation cost, and the slots of each kind."""

    name: str
    label: str
    latency: float
    cost: float
    cpu: bool = False
    proposals: int = 4
    slots: int = 4

    def ideal(self, iterations: int) -> float:
        return max(iterations * self.latency / self.proposals, iterations * self.cost / self.slots)


SETTINGS = {s.name: s for s in [
    Setting("a", "L = E = 0.5 s (sleep)", 0.5, 0.5),
    Setting("b", "L = 0.1 s, E = 0.05 s", 0.1, 0.05),
    Setting("c", "E = 0.5 s of CPU, L = 0.1 s, 2 evaluation slots", 0.1, 0.5, cpu=True, slots=2),
    Setting("d", "L = E = 0 (orchestration only)", 0.0, 0.0),
]}


def openevolve_python() -> Path:
    """The interpreter of OpenEvolve's own virtualenv, created with OpenEvolve from PyPI when missing."""
    python = OPENEVOLVE_VENV / "bin" / "python"
    check = [str(python), "-c", "import openevolve, sys; sys.exit(openevolve.__version__ != sys.argv[1])",
             OPENEVOLVE_VERSION]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    print(f"installing openevolve=={OPENEVOLVE_VERSION} into {OPENEVOLVE_VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(OPENEVOLVE_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"openevolve=={OPENEVOLVE_VERSION}"], check=True)
    return python


def evolve_code(which: str) -> Path | None:
    """Where evolve's code is imported from: None for the working tree (the editable install), or an
    export of a commit (`git archive`, cached) put first on PYTHONPATH, steady while others edit the tree."""
    if which == "tree":
        return None
    sha = subprocess.run(["git", "rev-parse", which], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    folder = Path.home() / ".cache" / "evolve-bench" / f"evolve-{sha[:12]}"
    if not (folder / "evolve" / "__init__.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def evolve_command(setting: Setting, work: Path, base_url: str, iterations: int,
                   overrides: tuple[str, ...] = ()) -> list[str]:
    problem = write_evolve_problem(work / "toy_bench", setting.cost, setting.cpu, work / "evaluations.log")
    workers = [f"ray.num_workers={setting.slots}"] + (["ray.worker_cpus=0.5"] if setting.slots > 2 else [])
    return [str(ROOT / ".venv" / "bin" / "evolve"), "run", f"problem={problem}", "llm=openai",
            f"llm.base_url={base_url}", "llm.model=fake-model", "llm.api_key_env=null",
            f"llm.concurrency={setting.proposals}", *workers, f"budget.iterations={iterations}",
            f"hydra.run.dir={work / 'run'}", *overrides]


def openevolve_command(setting: Setting, work: Path, base_url: str, iterations: int) -> list[str]:
    initial, evaluator, config = write_openevolve_files(work / "oe", setting.cost, setting.cpu,
                                                        work / "evaluations.log", base_url, iterations, setting.slots)
    return [str(openevolve_python().parent / "openevolve-run"), str(initial), str(evaluator), "--config",
            str(config), "--iterations", str(iterations), "--output", str(work / "run")]


def _log_time(line: str) -> float | None:
    """The wall-clock time of a `2026-11-22 19:08:15,607 ...` or `[2026-11-22 19:08:15,607 ...` log line."""
    match = re.match(r"\[?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[,.]\d+)", line)
    return datetime.strptime(match.group(1).replace(",", "."), "%Y-%m-%d %H:%M:%S.%f").timestamp() if match else None


def _first(lines: list[str], pattern: str) -> float | None:
    return next((_log_time(line) for line in lines if re.search(pattern, line)), None)


def last_commit(run_dir: Path) -> float | None:
    """When evolve committed its last program (programs.created_at), or None."""
    db = run_dir / "programs.db"
    if not db.exists():
        return None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (value,) = conn.execute("SELECT max(created_at) FROM programs").fetchone()
    if not value:
        return None
    stamp = datetime.fromisoformat(str(value))
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def _first_line_time(path: Path) -> float | None:
    if not path.exists():
        return None
    with open(path, errors="replace") as lines:
        return _log_time(lines.readline())


def evolve_split(run_dir: Path, pid: int, started: float, requests: list) -> dict[str, float | None]:
    """Seconds from the command's start to each start-up marker evolve leaves (None where absent): the
    fake server's log, the Ray session this process started (its dir's name, GCS, raylet and driver
    logs) and campaign.log."""
    log = (run_dir / "campaign.log").read_text().splitlines() if (run_dir / "campaign.log").exists() else []
    sessions = [Path(p) for p in glob.glob(f"/tmp/ray/session_*_{pid}") if os.path.getmtime(p) >= started - 1]
    drivers = [Path(p) for p in glob.glob(f"/tmp/ray/session_*/logs/python-core-driver-*_{pid}.log")
               if os.path.getmtime(p) >= started]  # in a cluster this process joined, if it started none
    logs = sessions[0] / "logs" if sessions else drivers[0].parent if drivers else Path("/nonexistent")
    drivers = drivers or list(logs.glob(f"python-core-driver-*_{pid}.log"))
    name = re.match(r"session_(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)_(\d+)", logs.parent.name)
    session = (datetime.strptime(name.expand(r"\1.\2"), "%Y-%m-%d_%H-%M-%S.%f").timestamp() if name else None)
    probe = next((r.arrived for r in requests if r.path.rstrip("/").endswith("/models")), None)
    marks = {
        "endpoint probed (imports, config, pre-flight done)": probe,
        "ray.init began (its session dir named)": session,
        "Ray's GCS up (first log line)": _first_line_time(logs / "gcs_server.out"),
        "raylet up (first log line)": _first_line_time(logs / "raylet.out"),
        "ray.init done (driver connected)": min((_first_line_time(p) or 0.0 for p in drivers), default=None),
        "evaluation slots ready (first sandbox layer logged)": _first(log, r"sandbox layer"),
        "initial program scored": _first(log, r"initial program scored"),
        "set-up done (logged)": _first(log, r"set-up took"),
        "first chat request": next((r.arrived for r in requests if r.path.endswith(CHAT)), None),
    }
    return {k: (round(v - started, 3) if v else None) for k, v in marks.items()}


def measure(tool: str, setting: Setting, iterations: int, timeout: float, keep: bool,
            code: Path | None = None, overrides: tuple[str, ...] = ()) -> dict:
    """One campaign of `tool` on `setting` against a fresh fake model; its figures as a dict."""
    work = Path(tempfile.mkdtemp(prefix=f"vs-oe-{tool}-{setting.name}-"))
    with FakeOpenAIServer(Responder(), latency=setting.latency) as server:
        if tool == "evolve":
            command = evolve_command(setting, work, server.base_url, iterations, overrides)
        else:
            command = openevolve_command(setting, work, server.base_url, iterations)
        load_before = os.getloadavg()[0]
        env = dict(os.environ, PYTHONPATH=str(code)) if code and tool == "evolve" else None
        tree = run_tree(command, work, work / "output.txt", timeout, env=env)
        requests = list(server.log)
    chats = [r for r in requests if r.path.endswith(CHAT)]
    evaluations = read_times(work / "evaluations.log")
    commit = last_commit(work / "run") if tool == "evolve" else None
    last_work = max([*(r.answered for r in chats), *evaluations[-1:], *([commit] if commit else [])],
                    default=tree.started)
    first = chats[0].arrived if chats else tree.exited
    loop = max(last_work - first, 1e-9)
    result = {
        "tool": tool, "setting": setting.name,
        "ok": tree.returncode == 0 and not tree.timed_out and len(evaluations) > iterations,
        "returncode": tree.returncode, "timed_out": tree.timed_out,
        "wall": tree.exited - tree.started, "startup": first - tree.started, "loop": loop,
        "tail": tree.exited - last_work, "iterations_per_s": max(len(evaluations) - 1, 0) / loop,
        "peak_rss_mb": tree.peak_rss / 2**20, "peak_pss_mb": tree.peak_pss / 2**20,
        "peak_processes": tree.peak_processes,
        "requests": len(chats), "evaluations": len(evaluations), "left_running": tree.left_running,
        "load_before": load_before, "load_after": os.getloadavg()[0], "work_dir": str(work),
        "output_tail": (work / "output.txt").read_text(errors="replace")[-1500:],
    }
    if tool == "evolve":
        result["split"] = evolve_split(work / "run", tree.pid, tree.started, requests)
    if not keep and result["ok"]:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return result


def _span(values: list[float], digits: int = 1) -> str:
    values = sorted(values)
    if not values:
        return "-"
    low, high = f"{values[0]:.{digits}f}", f"{values[-1]:.{digits}f}"
    return low if low == high else f"{low}-{high}"


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r["ok"] and r.get(key) is not None]
    return statistics.median(values) if values else None


DEFAULT_MEMORY_PROBLEMS = ("circle_packing", "warehouse_tsp")


def default_memory(iterations: int, overrides: tuple[str, ...] = ()) -> list[dict]:
    """Peak memory of the process tree of `evolve run problem=P budget.iterations=N`, nothing else set
    but `overrides` (issue 10's memory figure is of a local campaign with default settings)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="evolve-memory-") as folder:
        for problem in DEFAULT_MEMORY_PROBLEMS:
            work = Path(folder) / problem
            work.mkdir()
            tree = run_tree([str(ROOT / ".venv" / "bin" / "evolve"), "run", f"problem={problem}",
                             f"budget.iterations={iterations}", f"hydra.run.dir={work / 'run'}", *overrides],
                            cwd=work, output=work / "output.log", timeout=1800)
            out.append({"problem": problem, "iterations": iterations, "ok": tree.returncode == 0,
                        "wall": tree.exited - tree.started, "peak_rss_mb": tree.peak_rss / 2**20,
                        "peak_pss_mb": tree.peak_pss / 2**20, "peak_processes": tree.peak_processes})
            print(f"default settings, {problem}: peak {out[-1]['peak_rss_mb']:.0f} MB RSS, "
                  f"{out[-1]['peak_pss_mb']:.0f} MB PSS, {out[-1]['wall']:.1f} s", file=sys.stderr)
    return out


def report(results: list[dict], settings: list[Setting], tools: list[str], iterations: int) -> str:
    """The markdown tables: per tool and setting (ranges over repetitions), ratios, evolve's start-up split."""
    lines = [("| setting | ideal s | tool | ok | wall s | start-up s | loop s | loop efficiency | it/s "
              "| exit tail s | peak MB (RSS) | peak MB (PSS) | requests / evaluations |"),
             "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s in settings:
        ideal = s.ideal(iterations)
        for tool in tools:
            tried = [r for r in results if r["setting"] == s.name and r["tool"] == tool]
            runs = [r for r in tried if r["ok"]]  # the figures are of the runs that finished
            if not tried:
                continue
            eff = [ideal / r["loop"] for r in runs] if ideal else []
            lines.append(
                f"| {s.name}: {s.label} | {ideal:.1f} | {tool} | {len(runs)}/{len(tried)} "
                f"| {_span([r['wall'] for r in runs])} | {_span([r['startup'] for r in runs])} "
                f"| {_span([r['loop'] for r in runs])} | {_span(eff, 2) if eff else '-'} "
                f"| {_span([r['iterations_per_s'] for r in runs])} | {_span([r['tail'] for r in runs], 2)} "
                f"| {_span([r['peak_rss_mb'] for r in runs], 0)} | {_span([r.get('peak_pss_mb', 0) for r in runs], 0)} "
                f"| {', '.join(str(r['requests']) + '/' + str(r['evaluations']) for r in runs)} |")
    if {"evolve", "openevolve"} <= set(tools):
        lines += ["", "Ratios evolve / OpenEvolve (medians of the repetitions; below 1: evolve faster or smaller):", "",
                  "| setting | wall | start-up | loop | it/s | exit tail | peak RSS | peak PSS |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for s in settings:
            mine = [r for r in results if r["setting"] == s.name and r["tool"] == "evolve"]
            theirs = [r for r in results if r["setting"] == s.name and r["tool"] == "openevolve"]
            cells = []
            for key in ("wall", "startup", "loop", "iterations_per_s", "tail", "peak_rss_mb", "peak_pss_mb"):
                a, b = _median(mine, key), _median(theirs, key)
                cells.append(f"{a / b:.2f}" if a is not None and b else "-")
            lines.append(f"| {s.name} | " + " | ".join(cells) + " |")
    splits = [r["split"] for r in results if r["tool"] == "evolve" and r["ok"] and "split" in r]
    if splits:
        lines += ["", f"evolve's start-up, seconds from the command's start (medians of {len(splits)} runs):", "",
                  "| marker | at s |", "| --- | ---: |"]
        for key in splits[0]:
            values = [s[key] for s in splits if s.get(key) is not None]
            lines.append(f"| {key} | {statistics.median(values):.2f} |" if values else f"| {key} | - |")
    return "\n".join(lines)


def import_seconds() -> float:
    """Seconds for a fresh interpreter to import evolve's CLI (a part of start-up, measured apart)."""
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "-c", "pass"], check=True)
    started = time.perf_counter()
    subprocess.run([python, "-c", "import evolve.cli.commands"], check=True, cwd=tempfile.gettempdir())
    return time.perf_counter() - started


def code_state(code: Path | None) -> str:
    """The commit measured, and how many files the working tree changes on top of it."""
    if code:
        return f"evolve exported from commit {code.name.removeprefix('evolve-')}"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False).stdout
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                             check=False).stdout
    return f"evolve at {head.strip() or '?'} with {len(changed.splitlines())} changed or new files"


def wait_for_load(limit: float | None, patience: float = 300.0) -> None:
    """Wait (at most `patience` seconds) until the 1-minute load average is under `limit`."""
    deadline = time.time() + patience
    while limit is not None and os.getloadavg()[0] >= limit and time.time() < deadline:
        time.sleep(5)


def render(saved: dict) -> str:
    """The header and tables of saved measurements (`--report` prints them again from the JSON)."""
    settings = [Setting(**s) for s in saved["settings"]]
    tools = list(dict.fromkeys(r["tool"] for r in saved["runs"]))
    imports = saved.get("import_evolve_cli_s")
    overrides = " ".join(saved.get("overrides") or [])
    header = (f"{saved['code']}{f' with {overrides}' if overrides else ''}; {saved['iterations']} iterations; "
              f"{saved['machine']}, OpenEvolve "
              f"{OPENEVOLVE_VERSION}; load average (1, 5, 15 min) at start "
              f"{', '.join(f'{x:.2f}' for x in saved['load_start'])}, at end "
              f"{', '.join(f'{x:.2f}' for x in saved['load_end'])}"
              + (f"; `import evolve.cli.commands` in a fresh interpreter {imports:.2f} s" if imports else ""))
    memory = saved.get("default_memory") or []
    if memory:
        header += ("\n\nevolve with default settings (`evolve run problem=P budget.iterations=N`):\n\n"
                   "| problem | iterations | ok | wall s | peak MB (RSS) | peak MB (PSS) | processes at the peak |\n"
                   "| --- | ---: | --- | ---: | ---: | ---: | ---: |\n"
                   + "\n".join(f"| {m['problem']} | {m['iterations']} | {m['ok']} | {m['wall']:.1f} | "
                                f"{m['peak_rss_mb']:.0f} | {m['peak_pss_mb']:.0f} | {m['peak_processes']} |"
                                for m in memory))
    return header + "\n\n" + report(saved["runs"], settings, tools, saved["iterations"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="a,b,c,d", help="comma-separated: " + ", ".join(
        f"{s.name} ({s.label})" for s in SETTINGS.values()))
    parser.add_argument("--reps", type=int, default=2, help="repetitions per tool and setting")
    parser.add_argument("--tools", default="evolve,openevolve", help="comma-separated: evolve, openevolve")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is killed")
    parser.add_argument("--json", type=Path, default=None, help="where to write the measurements, after every "
                        "run (default runs/benchmarks/vs_openevolve-<time>.json)")
    parser.add_argument("--report", type=Path, default=None, help="print the tables of a saved JSON and exit")
    parser.add_argument("--code", default="tree", help="evolve's code: `tree` (the working tree) or a commit "
                        "such as HEAD (exported with git archive, for a steady measurement while the tree is edited)")
    parser.add_argument("--wait-load", type=float, default=None, help="before each run, wait (up to 5 min) "
                        "until the 1-minute load average is under this, on a machine others share")
    parser.add_argument("--keep", action="store_true", help="keep every run's temp dir (failed runs' are kept)")
    parser.add_argument("--default-memory", type=int, default=0, metavar="N", help="first, the peak memory of "
                        "`evolve run` with default settings (the offline model) for N iterations of each built-in "
                        "problem in DEFAULT_MEMORY_PROBLEMS")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="an override added to every evolve run, --default-memory's too (repeatable), "
                             "e.g. ray.start_after=100")
    args = parser.parse_args()
    if args.report:
        print(render(json.loads(args.report.read_text())))
        return
    settings = [SETTINGS[name] for name in args.settings.split(",")]
    tools = args.tools.split(",")
    if "openevolve" in tools:
        openevolve_python()
    code = evolve_code(args.code) if "evolve" in tools else None
    path = args.json or ROOT / "runs" / "benchmarks" / f"vs_openevolve-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = {"code": code_state(code), "overrides": args.override, "iterations": args.iterations,
             "load_start": os.getloadavg(), "load_end": os.getloadavg(),
             "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
             "import_evolve_cli_s": import_seconds() if "evolve" in tools else None,
             "settings": [asdict(s) for s in settings], "ideal": {s.name: s.ideal(args.iterations) for s in settings},
             "runs": [],
             "default_memory": default_memory(args.default_memory, tuple(args.override)) if args.default_memory else []}
    for s in settings:
        for rep in range(args.reps):
            for tool in (tools if rep % 2 == 0 else tools[::-1]):  # alternate the order against drift
                wait_for_load(args.wait_load)
                result = measure(tool, s, args.iterations, args.timeout, args.keep, code, tuple(args.override))
                saved["runs"].append(result)
                saved["load_end"] = os.getloadavg()
                path.write_text(json.dumps(saved, indent=1))
                status = "ok" if result["ok"] else f"FAILED (rc {result['returncode']}, kept {result['work_dir']})"
                print(f"{s.name} rep {rep + 1} {tool}: wall {result['wall']:.1f} s, "
                      f"start-up {result['startup']:.1f} s, loop {result['loop']:.1f} s, tail {result['tail']:.2f} s, "
                      f"peak {result['peak_rss_mb']:.0f} MB RSS, {result['peak_pss_mb']:.0f} MB PSS, "
                      f"load {result['load_before']:.1f} -> {result['load_after']:.1f}: {status}", file=sys.stderr)
    print(render(saved))
    print(f"\nmeasurements: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
