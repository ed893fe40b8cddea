"""Page load of `evolve ui` on a 10,000-program run: the server answering every request the page makes.

    .venv/bin/python benchmarks/ui_load.py [--programs 10000] [--repeat 5]

The run is written the way `benchmarks/database_scale.py` writes one (circle_packing-shaped rows with
recorded prompts, bulk inserts, four islands). Then `evolve ui RUN_DIR` runs as a subprocess on a free
port, and one page load is timed as a browser makes it: the page, its style, app.js and plotly.min.js,
the campaign list, the campaign's chart data, and one program's details (what a click asks for).
`cold` is the first load (the database opened read-only and its indexes built, the evaluator built for
the reference lines); `warm` is a reload (the chart data cached until the rows change), the median of
`--repeat`. When Debian's chromium and chromedriver are present, the time until the page has drawn
every chart in a headless Chromium is measured too, and `evolve report` (the command) on the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from database_scale import fill

from evolve.config import Config
from evolve.problems import get_problem
from evolve.storage.rundir import write_config


def fetch(url: str) -> int:
    with urllib.request.urlopen(url, timeout=300) as response:
        return len(response.read())


def page_load(base: str) -> tuple[float, int]:
    """Seconds and bytes for one page load: the static files in parallel, then the data, then a program."""
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        sizes = list(pool.map(fetch, [base, base + "static/style.css", base + "static/app.js",
                                      base + "static/plotly.min.js", base + "api/campaigns"]))
    sizes.append(fetch(base + "api/campaign?run=0"))
    sizes.append(fetch(base + "api/program?run=0&id=2"))
    return time.perf_counter() - started, sum(sizes)


def browser_load(base: str) -> float | None:
    """Seconds until headless Chromium has drawn every chart, or None without chromium."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,3200"):
        options.add_argument(arg)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        started = time.perf_counter()
        chrome.get(base)
        while chrome.execute_script("return document.body.dataset.ready") != "yes":
            time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        chrome.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="evolve-ui-"))
    try:
        config = Config(problem=get_problem("circle_packing"), name="ui-load")
        write_config(config, run_dir)
        (run_dir / "campaign.log").write_text("")
        started = time.perf_counter()
        fill(f"sqlite:///{run_dir / 'programs.db'}", config, run_dir, args.programs)
        print(f"wrote {args.programs:,} programs in {time.perf_counter() - started:.0f} s", flush=True)
        evolve = str(Path(sys.executable).with_name("evolve"))
        server = subprocess.Popen([evolve, "ui", str(run_dir), "--port", "0"], stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline()
            base = line.split()[2]
            cold, size = page_load(base)
            warm = statistics.median(page_load(base)[0] for _ in range(args.repeat))
            with urllib.request.urlopen(base + "api/campaign?run=0") as response:
                data = json.loads(response.read())
            chromium = browser_load(base)
        finally:
            server.terminate()
            server.wait(timeout=30)
        started = time.perf_counter()
        subprocess.run([evolve, "report", str(run_dir)], check=True, capture_output=True)
        report_seconds = time.perf_counter() - started
        report_mb = (run_dir / "report.html").stat().st_size / 1e6
        out = {"programs": f"{args.programs:,}", "valid points": f"{len(data['scores']['score']):,}",
               "page load cold s": f"{cold:.2f}", "page load warm s (median)": f"{warm:.3f}",
               "bytes per load": f"{size / 1e6:.1f} MB",
               "headless Chromium until drawn s": "-" if chromium is None else f"{chromium:.2f}",
               "`evolve report` s": f"{report_seconds:.1f}", "report.html MB": f"{report_mb:.1f}"}
        print(json.dumps(out))
        print("| " + " | ".join(out) + " |\n| " + " | ".join("---" for _ in out) + " |")
        print("| " + " | ".join(out.values()) + " |")
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
