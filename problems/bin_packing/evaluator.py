"""Trusted scoring for online bin packing: the packer runs here and asks the candidate for priorities."""

from __future__ import annotations

import weakref
from collections.abc import Mapping

import numpy as np

from evaluators import CallBudget, CandidateError, RejectedReply, Score, Session, SplitEvaluator, lockstep
from problems.bin_packing.heuristics import FUNSEARCH_RULES
from problems.bin_packing.instances import SPLITS, GeneratorConfig, Instance, build_splits
from problems.bin_packing.packing import Packing, online_pack, packing_steps
from problems.bin_packing.report import reference_rows
from problems.bin_packing.scoring import best_fit_bins, summarise

__all__ = ["BinPacking"]


def _groups(spec: Mapping[str, int] | None, default: tuple) -> tuple[tuple[str, int], ...]:
    """A split's `{group: count}` from the config as the generator's tuple (the default when absent)."""
    return default if spec is None else tuple((str(g), int(c)) for g, c in dict(spec).items())


class BinPacking(SplitEvaluator):
    """Scores `priority(item, bins) -> list[float]` by the excess bins over the L1 bound, online.

    The packer (`packing.packing_steps`) runs on this side and asks the candidate for the priorities of
    the open bins that can hold each item plus one empty bin. The instances of a split are packed side
    by side (`evaluators.lockstep`): one sandbox round trip carries the current item of every instance
    still packing, so an item's call never holds a later item of its own instance. A reply that is not
    a list of len(bins) finite numbers, a raising call, one running past `call_timeout`, or calls using
    more than `max_ms_per_item` of CPU time on average (2 s at least per split; measured outside the
    sandbox) make the program invalid. Fitness is minus the pooled excess in percent (every bin weighs
    the same on every instance; the mean of per-instance excesses is the `excess_pct` metric). A quick
    stage (the first instance of each training group) comes first: a child more than `quick_margin`
    points of pooled excess worse than best fit there is not packed on the rest (None: no quick stage).
    Validation and test instances are scored only through `validate` and `test`.
    """

    entrypoint = "priority"
    reference_splits = SPLITS
    timing_metrics = ("ms_per_item",)

    def __init__(self, seed: int = 2026, train: Mapping[str, int] | None = None,
                 val: Mapping[str, int] | None = None, test: Mapping[str, int] | None = None,
                 call_timeout: float = 20.0, max_ms_per_item: float = 5.0,
                 quick_margin: float | None = 1.0, lanes: int = 1) -> None:
        defaults = GeneratorConfig()
        self.generator = GeneratorConfig(seed=int(seed), train=_groups(train, defaults.train),
                                         val=_groups(val, defaults.val), test=_groups(test, defaults.test))
        self.splits = build_splits(self.generator)
        self.call_timeout = float(call_timeout)
        self.max_ms_per_item = float(max_ms_per_item)
        if int(lanes) < 1:
            raise ValueError(f"lanes={lanes}: at least one batch must be in flight (1, or 2 to overlap the candidate's "
                             "computing with this side's)")
        self.lanes = int(lanes)
        self.smoke_set = [min(self.splits["train"], key=lambda inst: len(inst.items))]
        train = self.splits["train"]
        quick = [inst for k, inst in enumerate(train) if k == 0 or inst.group != train[k - 1].group]
        self.quick_margin = None if quick_margin is None else float(quick_margin)
        self.quick_set = quick if self.quick_margin is not None and len(quick) < len(train) else None
        self.quick_bar = (summarise(quick, [best_fit_bins(inst) for inst in quick]).pooled_excess_pct
                          + self.quick_margin if self.quick_set else None)
        self._quick_done: weakref.WeakKeyDictionary[Session, tuple[dict[str, Packing], float]] = \
            weakref.WeakKeyDictionary()

    def references(self, split: str) -> list[dict]:
        """First fit, best fit, worst fit and first fit decreasing on one split (our own code)."""
        return reference_rows(self.splits[split])

    def reference_scores(self, split: str = "train") -> dict[str, float]:
        """FunSearch's published heuristics (`heuristics.FUNSEARCH_RULES`), the better of the two on each
        group, as the fitness (minus the pooled excess %) on `split`."""
        instances = self.splits[split]
        by_group: dict[str, list[Instance]] = {}
        for inst in instances:
            by_group.setdefault(inst.group, []).append(inst)
        bins, ordered = [], []
        for group in by_group.values():
            packed = [[online_pack(inst.items, inst.capacity, rule).bins for inst in group]
                      for rule in FUNSEARCH_RULES.values()]
            bins += min(packed, key=sum)
            ordered += group
        return {"FunSearch's heuristics": -summarise(ordered, bins).pooled_excess_pct}

    def could_matter(self, quick: Score) -> bool:
        """Whether the quick instances' pooled excess is within `quick_margin` points of best fit's there."""
        return quick.valid and -quick.value <= self.quick_bar

    def _pack(self, candidate: Session, instances: list[Instance], split: str, budget: CallBudget) -> list[Packing]:
        """Pack `instances` side by side; the quick stage's packings are kept for the train stage that follows
        it in the same session (the same instances, the same candidate: packed once)."""
        done: dict[str, Packing] = {}
        earlier = self._quick_done.pop(candidate, None)
        if split == "train" and earlier is not None and set(earlier[0]) <= {inst.name for inst in instances}:
            done, budget.spent = earlier
        todo = [inst for inst in instances if inst.name not in done]

        def send(arg_lists: list[tuple]) -> object:
            return budget.send_numbers("priority", arg_lists, counts=[len(bins) for _, bins in arg_lists],
                                       what="priorities", timeout=self.call_timeout, pick=True)

        try:
            episodes = [packing_steps(inst.items, inst.capacity) for inst in todo]
            packed = lockstep(episodes, send, budget.receive_numbers, self.lanes)
        except (RejectedReply, CandidateError) as exc:
            episode = getattr(exc, "episode", None)
            if episode is None:
                raise
            inst = todo[episode]
            where = f"{split} instance {inst.name} ({len(inst.items)} items, capacity {inst.capacity})"
            raise type(exc)(f"{where}: {exc}") from None
        done.update((inst.name, p) for inst, p in zip(todo, packed))
        if split == "quick":
            self._quick_done[candidate] = (dict(done), budget.spent)
        return [done[inst.name] for inst in instances]

    def score(self, candidate: Session, instances: list[Instance], split: str) -> Score:
        """Pack every instance with the candidate's priorities and compare with the L1 bound and best fit."""
        items = sum(len(inst.items) for inst in instances)
        budget = CallBudget(candidate, max(2.0, self.max_ms_per_item * items / 1000))
        try:
            packings = self._pack(candidate, instances, split, budget)
        except RejectedReply as exc:
            where = "" if getattr(exc, "episode", None) is not None else \
                f"{split} ({len(instances)} instances, {items} items): "
            return Score.invalid(f"{where}{exc}")
        seconds = budget.spent
        got = summarise(instances, [p.bins for p in packings])
        base = summarise(instances, [best_fit_bins(inst) for inst in instances])
        agreement = 100 * sum(p.best_fit_agreement for p in packings) / items
        voluntary = 100 * sum(p.voluntary_new_bins for p in packings) / items
        worst = int(np.argmax(got.per_instance))
        metrics = {
            "excess_pct": got.excess_pct,
            **{f"excess_pct_{group}": value for group, value in got.by_group.items()},
            "pooled_excess_pct": got.pooled_excess_pct,
            "best_fit_excess_pct": base.excess_pct,
            "gain_over_best_fit": base.excess_pct - got.excess_pct,
            "bins": got.bins,
            "l1_bound": got.l1,
            "best_fit_agreement_pct": agreement,
            "voluntary_new_bin_pct": voluntary,
            "ms_per_item": 1000 * seconds / items,
            "instances": len(instances),
        }
        groups = ", ".join(f"{g} {v:.2f}%" for g, v in got.by_group.items())
        feedback = (f"{split}: {got.pooled_excess_pct:.3f}% excess bins over the L1 bound, pooled over "
                    f"{len(instances)} instances (mean per instance {got.excess_pct:.3f}%; {groups}); best fit "
                    f"{base.pooled_excess_pct:.3f}% ({base.pooled_excess_pct - got.pooled_excess_pct:+.3f} "
                    f"points better); {agreement:.1f}% of items placed where best fit would put them, "
                    f"{voluntary:.2f}% in a new bin although an open bin fitted; worst {instances[worst].name} "
                    f"{got.per_instance[worst]:.2f}%; {metrics['ms_per_item']:.3f} ms per item")
        return Score(value=-got.pooled_excess_pct, metrics=metrics, feedback=feedback,
                     features={"best_fit_agreement_pct": agreement})
