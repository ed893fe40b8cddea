"""`report.html`: one self-contained page about a campaign (no scripts, no external files)."""

from __future__ import annotations

import difflib
import html
from pathlib import Path

from evolve.config import Config
from evolve.database import ProgramDatabase
from evolve.llm.outcomes import model_outcomes, trailing_unapplied, unapplied_message
from evolve.program import Program, ProgramStatus

__all__ = ["write_report"]

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}
.add{background:#e6ffe6}.del{background:#ffe6e6}h2{margin-top:1.6em}"""


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def _chart(points: list[tuple[int, float]], best: list[tuple[int, float]], floor: float | None,
           width=900, height=260) -> str:
    """An SVG scatter of valid scores by iteration with the best-so-far line; worse than `floor` sits on the axis."""
    if not points:
        return "<p>No valid program.</p>"
    xs = [x for x, _ in points]
    ys = sorted(y for _, y in points)
    hi = ys[-1]
    lo = ys[len(ys) // 4] if floor is None else floor  # far worse programs would flatten the climb
    lo -= 0.05 * ((hi - lo) or 1.0)
    span_x = max(1, max(xs))
    span_y = (hi - lo) or 1.0

    def xy(x: float, y: float) -> tuple[float, float]:
        return 40 + (width - 60) * x / span_x, 10 + (height - 40) * (1 - (max(y, lo) - lo) / span_y)

    dots = "".join(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2" fill="#89a"/>' for a, b in (xy(x, y) for x, y in points))
    line = " ".join(f"{a:.1f},{b:.1f}" for a, b in (xy(x, y) for x, y in best))
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="score by iteration">'
            f'<rect width="{width}" height="{height}" fill="white"/>{dots}'
            f'<polyline points="{line}" fill="none" stroke="#c33" stroke-width="2"/>'
            f'<text x="40" y="{height - 8}" font-size="11">iteration 0</text>'
            f'<text x="{width - 120}" y="{height - 8}" font-size="11">iteration {span_x}</text>'
            f'<text x="44" y="20" font-size="11">{hi:.6g}</text>'
            f'<text x="44" y="{height - 34}" font-size="11">{lo:.6g}</text></svg>')


def _diff(before: str, after: str) -> str:
    rows = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), "initial", "best", lineterm="", n=2):
        css = "add" if line.startswith("+") and not line.startswith("+++") else \
            "del" if line.startswith("-") and not line.startswith("---") else ""
        rows.append(f'<span class="{css}">{html.escape(line)}</span>')
    return "<pre>" + "\n".join(rows) + "</pre>" if rows else "<p>The best program is the initial one.</p>"


def _side_by_side(best: Program, initial: Program) -> str:
    head = "<tr><th></th><th>best: train</th><th>best: validation</th><th>initial: train</th><th>initial: validation</th></tr>"
    bv, iv = best.validation or {}, initial.validation or {}
    rows = [("score", best.score, bv.get("score"), initial.score, iv.get("score"))]
    for key in sorted(k for k in best.metrics if "." not in k):
        rows.append((key, best.metrics[key], bv.get("metrics", {}).get(key), initial.metrics.get(key),
                     iv.get("metrics", {}).get(key)))
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def write_report(run_dir: Path, db: ProgramDatabase, config: Config) -> Path:
    """Write `run_dir/report.html` from the database and return its path."""
    programs = list(db.programs())
    best, initial = db.best(), db.initial()
    counts = db.counts()
    points, trail, top = [], [], None
    for p in programs:
        if p.status is ProgramStatus.VALID:
            points.append((p.iteration, p.score))
            if top is None or p.score > top:
                if trail:
                    trail.append((p.iteration, top))  # a step, not a slope
                top = p.score
                trail.append((p.iteration, top))
    if trail:
        trail.append((max(x for x, _ in points), trail[-1][1]))
    ranked = sorted((p for p in programs if p.status is ProgramStatus.VALID), key=lambda p: -p.score)[:10]
    top_rows = "".join(
        f"<tr><td>{p.id}</td><td>{p.iteration}</td><td>{p.generation}</td><td>{p.island}</td><td>{_fmt(p.score)}</td>"
        f"<td>{_fmt((p.validation or {}).get('score'))}</td><td>{html.escape(p.proposer)}</td></tr>" for p in ranked)
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>evolve: {html.escape(db_name(config))}</title>",
        f"<style>{_STYLE}</style><h1>{html.escape(config.problem.name)}: {html.escape(db_name(config))}</h1>",
        f"<p>{html.escape(config.problem.description)}</p>",
        f"<p>{db.iterations} of {config.budget.iterations} iterations; programs by status: "
        + ", ".join(f"{html.escape(k)} {v}" for k, v in sorted(counts.items())) + "</p>",
    ]
    if best is not None and initial is not None:
        parts += [f"<h2>Best program {best.id} (iteration {best.iteration}, by {html.escape(best.proposer)})</h2>",
                  _side_by_side(best, initial), f"<p>{html.escape(best.feedback)}</p>"]
    parts += _proposals(programs, db, config)
    parts += ["<h2>Scores by iteration</h2>", _chart(points, trail, initial.score if initial else None),
              "<h2>Top programs</h2><table><tr><th>id</th><th>iteration</th><th>generation</th><th>island</th>"
              f"<th>score</th><th>validation</th><th>proposer</th></tr>{top_rows}</table>"]
    if best is not None and initial is not None:
        parts += ["<h2>What the best program changed</h2>", _diff(initial.code, best.code)]
    path = run_dir / "report.html"
    path.write_text("\n".join(parts))
    return path


def _proposals(programs: list[Program], db: ProgramDatabase, config: Config) -> list[str]:
    """Per model: proposals, applied edits, edit failures by kind, transport failures, tokens; and the
    run of replies that did not apply at the end, when it stopped (or would have stopped) the campaign."""
    outcomes = model_outcomes(programs)
    if not outcomes:
        return []
    spend = db.spend()
    children = [p for p in programs if p.iteration > 0 and p.status.is_evaluated()]
    valid = sum(p.status is ProgramStatus.VALID for p in children)
    share = f"{100 * valid / len(children):.1f}% of {len(children)} evaluated children" if children else "no child evaluated"
    rows = "".join(
        f"<tr><td>{html.escape(name or '-')}</td><td>{o.proposals}</td><td>{o.applied}</td><td>{o.edit_failed}</td>"
        f"<td>{html.escape(o.reasons(6))}</td><td>{o.transport_failed}</td><td>{o.prompt_too_large}</td>"
        f"<td>{spend.get(name, {}).get('prompt_tokens', 0)}</td><td>{spend.get(name, {}).get('completion_tokens', 0)}</td>"
        f"<td>{o.valid} / {o.evaluated}</td></tr>" for name, o in sorted(outcomes.items()))
    out = ["<h2>Proposals per model</h2>", f"<p>valid share: {share}</p>",
           "<table><tr><th>proposer</th><th>proposals</th><th>applied</th><th>edit failed</th><th>why not applied</th>"
           "<th>transport failed</th><th>prompt too large</th><th>tokens in</th><th>tokens out</th>"
           f"<th>valid / evaluated</th></tr>{rows}</table>"]
    run, reasons, last = trailing_unapplied(programs)
    limit = config.llm.max_unapplied_in_a_row
    if run and run >= (limit or 20):
        out.append(f"<p><b>The last {html.escape(unapplied_message(run, reasons, last))}</b></p>")
    return out


def db_name(config: Config) -> str:
    """The campaign's name as the database knows it."""
    return config.name or config.problem.name
