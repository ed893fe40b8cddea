"""The page's files: its HTML, script and style (package data), and plotly.min.js from the `plotly` wheel."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from evolve.errors import EvolveError

__all__ = ["asset", "fill", "page", "plotly_js", "static_text"]

STATIC = Path(__file__).with_name("static")
_KINDS = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8"}


def plotly_js() -> Path:
    """The plotly.min.js that the `plotly` package ships (found without importing plotly)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise EvolveError("the web view needs the plotly package for its charts: pip install plotly")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise EvolveError(f"{path} is missing: reinstall plotly (pip install --force-reinstall plotly)")
    return path


def static_text(name: str) -> str:
    """One of the page's own files."""
    return (STATIC / name).read_text()


def fill(template: str, **parts: str) -> str:
    """The page template with its `<!--HEAD-->`, `<!--TAIL-->` and `<!--STATIC-->` markers replaced, in one
    pass (what goes in is never searched for markers)."""
    return re.sub(r"<!--(HEAD|TAIL|STATIC)-->", lambda m: parts.get(m.group(1).lower(), ""), template)


def page() -> bytes:
    """The page as `evolve ui` serves it: scripts by URL, data fetched from the endpoints."""
    return fill(static_text("index.html"),
                head='<script src="static/plotly.min.js"></script><link rel="stylesheet" href="static/style.css">',
                tail='<script src="static/app.js"></script>').encode()


def asset(name: str) -> tuple[bytes, str] | None:
    """(content, content type) of a file under /static/, or None."""
    if name == "plotly.min.js":
        return plotly_js().read_bytes(), _KINDS[".js"]
    if name not in ("app.js", "style.css"):
        return None
    return (STATIC / name).read_bytes(), _KINDS[Path(name).suffix]
