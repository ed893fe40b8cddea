"""The campaign's terminal display: it fits 80 columns, counts from the first proposal, says when it will
end, and prints a line for each new best above the bar."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from evolve.observe.progress import ProgressDisplay, Stats, clock


def _console(width: int = 80) -> Console:
    return Console(width=width, record=True, file=io.StringIO(), color_system=None)


def _lines(console: Console) -> list[str]:
    return console.export_text().rstrip("\n").split("\n")


def test_the_display_fits_80_columns_with_every_figure_and_a_line_per_new_best():
    console = _console()
    stats = Stats(started=time.monotonic() - 95, best=2.48665, best_iteration=0, best_by="initial")
    header = ["evolve: campaign circle_packing/2026-11-22_19-08-07-160812 in runs/circle_packing/2026-11-22_19-08-07",
              "Ray dashboard: http://127.0.0.1:8265"]
    with ProgressDisplay(200, 40, True, console, header=header, stats=stats) as display:
        stats.iterations, stats.evaluated, stats.valid, stats.in_flight = 60, 57, 41, 6
        stats.evaluator_errors = 3
        display.update(stats, 100)  # the best has not changed: no line
        stats.set_best(2.581362714, 139, "offline-mutator")
        display.update(stats, 101)
    lines = _lines(console)
    assert lines[:2] == header[:1] + header[1:]  # printed as given, before the bar
    assert lines[2].startswith("new best 2.58136 (+0.0947") and "at iteration 139" in lines[2] \
        and lines[2].endswith("by offline-mutator")
    bar, figures = lines[-2:]
    assert len(lines) == 5, lines  # header, one new best, the bar and the figures: nothing wrapped
    assert all(len(line) <= 80 for line in lines[2:]), lines
    assert bar.startswith("evolve ") and "101/200" in bar
    elapsed, _, eta = bar.rpartition("101/200")[2].strip().partition(" ")
    assert elapsed.startswith("1:3") and eta.startswith("eta ")  # 95 s since the first proposal
    assert re.fullmatch(r"best 2\.58136 \| 0\.\d\d evals/s \| valid 72% of 57 \| evaluator errors 3 \| in flight 6",
                        figures), figures
    assert "…" not in figures


def test_on_a_narrow_terminal_the_figures_that_do_not_fit_are_left_out_whole():
    console = _console(60)
    stats = Stats(started=time.monotonic() - 5, best=1.0, evaluated=10, valid=5, iterations=10, unapplied=4,
                  evaluator_errors=2)
    with ProgressDisplay(100, 10, True, console, stats=stats) as display:
        display.update(stats, 10)
    figures = _lines(console)[-1]
    assert figures.startswith("best 1 | ") and len(figures) <= 60 and not figures.endswith("|")
    assert "in flight" not in figures  # the last figures, left out rather than cut


def test_a_disabled_display_prints_nothing_but_still_logs(caplog):
    console = _console()
    stats = Stats(started=time.monotonic(), best=1.0, best_iteration=0)
    with caplog.at_level("INFO", logger="evolve.engine.campaign"), \
            ProgressDisplay(10, 0, False, console, log_every=0.0, header=["run dir"], stats=stats) as display:
        stats.set_best(2.0, 1, "m")
        display.update(stats, 1)
    assert console.export_text() == ""
    assert "iteration 1: best 2 |" in caplog.text


def test_the_eta_comes_from_the_binding_budget_and_this_invocations_pace():
    stats = Stats(started=100.0, iterations=10, evaluated=8)
    assert stats.eta(90, now=110.0) == (90.0, "iterations")  # 1 s an iteration, 90 to go
    assert stats.eta(90, wall_seconds=30, now=110.0) == (20.0, "wall")  # the wall budget ends first
    assert stats.eta(90, wall_seconds=600, now=110.0) == (90.0, "iterations")
    assert Stats(started=100.0).eta(5, now=110.0) is None  # no pace yet
    assert Stats(started=100.0).eta(5, wall_seconds=60, now=110.0) == (50.0, "wall")
    assert stats.elapsed(now=110.0) == 10.0 and clock(59) == "0:59" and clock(3725) == "1:02:05"


def test_without_a_terminal_the_header_comes_first_then_a_plain_line_every_interval():
    console = _console()
    stats = Stats(started=time.monotonic(), best=1.0, best_iteration=0, iterations=3, evaluated=3, valid=2)
    with ProgressDisplay(10, 0, False, console, header=["run dir: runs/x"], stats=stats, lines_every=0.0) as display:
        for done in (1, 2, 3):
            display.update(stats, done)
    lines = _lines(console)
    assert lines[0] == "run dir: runs/x" and len(lines) == 4, lines  # one line per update at interval 0
    assert [line.split(" | ")[0] for line in lines[1:]] == ["iteration 1/10", "iteration 2/10", "iteration 3/10"]
    assert re.search(r"\| \d:\d\d eta (\d:\d\d|-) \| best 1 \| [\d.]+ evals/s \| valid 67% of 3 \| in flight 0$",
                     lines[-1]), lines[-1]
    console = _console()
    with ProgressDisplay(10, 0, False, console, header=["run dir: runs/x"], stats=stats, lines_every=3600) as display:
        for done in (1, 2, 3):
            display.update(stats, done)
    assert _lines(console) == ["run dir: runs/x"]  # the interval has not passed: the header only
