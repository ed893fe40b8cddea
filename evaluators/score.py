"""What an evaluator returns for a candidate."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Score"]


@dataclass(frozen=True)
class Score:
    """The trusted verdict on one candidate. Higher `value` is better.

    Attributes:
        value: the fitness the campaign maximises (finite).
        metrics: any figures worth keeping (plain JSON data), shown in prompts and reports.
        features: MAP-Elites coordinates by feature name (finite numbers).
        feedback: text for the next prompt about this program (failing cases, hints).
        valid: False when the candidate failed; `value` is then ignored.
    """

    value: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    feedback: str = ""
    valid: bool = True

    @classmethod
    def invalid(cls, reason: str, **metrics: Any) -> Score:
        """A failed candidate, with the reason as its feedback."""
        return cls(value=0.0, metrics=metrics, feedback=reason, valid=False)

    def checked(self) -> Score:
        """Return self after checking it is plain, finite data; raise ValueError naming the bad field."""
        if self.valid and not (isinstance(self.value, (int, float)) and math.isfinite(self.value)):
            raise ValueError(f"Score.value must be a finite number, got {self.value!r}")
        for name, v in self.features.items():
            if not (isinstance(v, (int, float)) and math.isfinite(v)):
                raise ValueError(f"Score.features[{name!r}] must be a finite number, got {v!r}")
        try:
            json.dumps(self.metrics, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Score.metrics must be plain finite JSON data: {exc}") from None
        return self
