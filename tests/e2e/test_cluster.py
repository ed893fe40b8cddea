"""A campaign on a real Ray cluster: a head and two worker nodes started with `ray start` on this machine,
joined through the real CLI with `ray.address=auto`. Evaluations run on every node, and a worker node
killed mid-campaign loses nothing: what it held is evaluated again elsewhere, each iteration is committed
once, and the campaign finishes."""

from __future__ import annotations

import collections
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from evolve.program import NODE_METRIC
from tests.e2e.ray_cluster import LocalCluster
from tests.e2e.test_cli import rows

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 30
NODES = f"""select id, iteration, status, json_extract(metrics, '$."{NODE_METRIC}"'), error from programs order by id"""


def _wait(condition, proc: subprocess.Popen, what: str, limit: float = 600.0) -> None:
    """Poll `condition` while the campaign runs; fail saying `what` did not happen."""
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, f"the campaign ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {limit:g} s"
        time.sleep(0.5)


def _evaluated(db: Path) -> list[tuple]:
    """The evaluated programs: id, iteration, status, the node that ran it, error."""
    try:
        return [r for r in rows(db, NODES) if r[2] in ("valid", "invalid", "evaluator_error")]
    except sqlite3.OperationalError:  # the database is being created
        return []


@pytest.mark.timeout(1200)  # three `ray start` nodes and a node's death noticed: room for a loaded machine
def test_a_campaign_runs_on_every_node_and_survives_losing_one(evolve_bin, cli_env, tmp_path):
    run_dir = tmp_path / "run"
    db = run_dir / "programs.db"
    started = time.monotonic()
    with LocalCluster(workers=2, cpus=1) as cluster:
        head, first, victim = cluster.nodes
        env = {**cli_env, **cluster.env, "PYTHONPATH": str(ROOT)}
        # every evaluation takes the evaluator a second: each worker holds one most of the time
        proc = subprocess.Popen([evolve_bin, "run", "problem.evaluator=tests.e2e.faulty:Slow", "ray.address=auto",
                                 f"budget.iterations={ITERATIONS}", f"hydra.run.dir={run_dir}", "progress=off"],
                                env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: sum(r[3] == victim.node_id for r in _evaluated(db)) >= 3, proc,
                  "three evaluations on the node to kill")
            cluster.kill(victim)
            killed_at = time.strftime("%H:%M:%S")
            before = _evaluated(db)
            _, err = proc.communicate(timeout=900)
        finally:
            proc.kill()
    seconds = time.monotonic() - started
    assert proc.returncode == 0, err
    numbers = [r[1] for r in rows(db)]  # every iteration committed once, none twice
    assert sorted(numbers) == list(range(ITERATIONS + 1)), numbers
    evaluated = _evaluated(db)
    per_node = collections.Counter(r[3] for r in evaluated)
    assert {head.node_id, first.node_id, victim.node_id} <= set(per_node), per_node
    assert not [r for r in evaluated if "died" in (r[4] or "")]  # nothing blamed on the candidates
    best = subprocess.run([evolve_bin, "best", str(run_dir)], env=cli_env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert best.returncode == 0, best.stderr
    best_id = int(best.stdout.split("best program ", 1)[1].split(":", 1)[0])
    node = next(r[3] for r in evaluated if r[0] == best_id)  # the node that ran it, or None: a local slot did
    assert (f"evaluated on Ray node {node}" in best.stdout) == (node is not None), best.stdout
    log = (run_dir / "campaign.log").read_text()
    assert "an evaluation worker died" in log and "retrying it on another (attempt 2 of 3)" in log, log[-3000:]
    after = [r for r in evaluated if r[0] > before[-1][0]]
    names = {head.node_id: "head", first.node_id: "worker1", victim.node_id: "worker2 (killed)"}
    print(f"\nnodes: {len(cluster.nodes)}; evaluations per node: "
          + ", ".join(f"{names.get(n, n)} {c}" for n, c in per_node.items())
          + f"; at the kill {len(before)} evaluated ({sum(r[3] == victim.node_id for r in before)} on the killed "
          f"node), after it {len(after)} more, of them on the killed node "
          f"{sum(r[3] == victim.node_id for r in after)}; {len(evaluated)} evaluated in all, "
          f"{len(numbers)} rows; workers lost {log.count('an evaluation worker died')}, evaluations retried "
          f"{log.count('retrying it on another')}, replacements given up {log.count('was given up')}; {seconds:.0f} s")
    print(f"killed {victim.name} at {killed_at}; then:\n" + "\n".join(
        line[:300] for line in log.splitlines() if "died" in line or "retrying" in line or "given up" in line))
