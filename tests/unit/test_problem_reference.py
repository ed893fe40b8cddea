"""docs/problem-reference.md documents every key a problem's config.yaml may hold, with a type and default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from evolve.config import FeatureDimension, ProblemConfig
from sandboxes import SandboxLimits

PAGE = Path(__file__).resolve().parents[2] / "docs" / "problem-reference.md"


def rows(heading: str) -> dict[str, list[str]]:
    """The table rows (key -> cells) of the section under `heading`."""
    text = PAGE.read_text().split(heading, 1)[1].split("\n#", 1)[0]
    found = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 5:
            found[cells[0].strip("`")] = cells
    return found


@pytest.mark.parametrize(("heading", "schema"), [
    ("### Top-level keys", ProblemConfig), ("### `features:`", FeatureDimension), ("### `limits:`", SandboxLimits),
])
def test_every_key_the_loader_accepts_is_documented(heading, schema):
    documented = rows(heading)
    keys = [f.name for f in dataclasses.fields(schema)]
    assert [k for k in keys if k not in documented] == [], f"undocumented keys under {heading}"
    assert [k for k in documented if k not in keys] == [], f"documented keys the loader does not accept ({heading})"
    for field in dataclasses.fields(schema):
        _key, kind, default, example, what = documented[field.name][:5]
        assert kind and example and what, field.name
        if field.default is not dataclasses.MISSING and isinstance(field.default, (bool, int, float, str)):
            assert default.strip("`") == shown(field.default), \
                f"{field.name}: documented default {default!r}, the loader's {field.default!r}"


def shown(default: object) -> str:
    """A default as the page writes it."""
    if default == "???":  # OmegaConf's MISSING
        return "required"
    if isinstance(default, bool):
        return str(default).lower()
    return '""' if default == "" else str(default)
