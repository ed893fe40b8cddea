"""The classic single-block routing policies (Roodbergen & de Koster's names), as visiting orders.

Each returns pick indices in visiting order; lengths are measured on the tour's shortest-path matrix,
so a policy is never charged more than its physical route. On multi-block layouts the policies treat
an aisle as one long aisle.
"""

from __future__ import annotations

from problems.warehouse_tsp.instances import Tour

__all__ = ["POLICIES", "combined", "largest_gap", "midpoint", "return_policy", "s_shape"]


def _by_aisle(tour: Tour) -> list[list[int]]:
    """Picks of each aisle that has any, left to right, each sorted front to back."""
    groups: dict[int, list[int]] = {}
    for i, a in enumerate(tour.aisles):
        groups.setdefault(a, []).append(i)
    return [sorted(groups[a], key=lambda i: tour.ys[i]) for a in sorted(groups)]


def return_policy(tour: Tour) -> list[int]:
    """Enter every aisle from the front, go as far as its last pick, come back."""
    return [i for aisle in _by_aisle(tour) for i in aisle]


def s_shape(tour: Tour) -> list[int]:
    """Traverse every aisle with picks completely, alternating direction."""
    return [i for k, aisle in enumerate(_by_aisle(tour)) for i in (aisle if k % 2 == 0 else aisle[::-1])]


def _split_policy(tour: Tour, split) -> list[int]:
    """First aisle up, middle aisles' back parts from the back, last aisle down, front parts on the way back."""
    aisles = _by_aisle(tour)
    if len(aisles) == 1:
        return aisles[0]
    order = list(aisles[0])
    fronts = []
    for aisle in aisles[1:-1]:
        cut = split(tour, aisle)
        order += aisle[cut:][::-1]
        fronts.append(aisle[:cut])
    order += aisles[-1][::-1]
    for front in reversed(fronts):
        order += front
    return order


def midpoint(tour: Tour) -> list[int]:
    """Picks in the back half are taken from the back cross-aisle, the rest from the front."""
    half = tour.layout.length / 2
    return _split_policy(tour, lambda t, aisle: sum(t.ys[i] <= half for i in aisle))


def largest_gap(tour: Tour) -> list[int]:
    """Each middle aisle is entered from both ends, leaving out its largest gap."""
    def cut(t: Tour, aisle: list[int]) -> int:
        ys = [0.0] + [t.ys[i] for i in aisle] + [t.layout.length]
        gaps = [ys[k + 1] - ys[k] for k in range(len(ys) - 1)]
        return max(range(len(gaps)), key=gaps.__getitem__)
    return _split_policy(tour, cut)


def combined(tour: Tour) -> list[int]:
    """Aisle by aisle, traverse or return, whichever is shorter from the side the picker is on."""
    length = tour.layout.length
    order, at_front = [], True
    for aisle in _by_aisle(tour):
        reach = tour.ys[aisle[-1]] if at_front else length - tour.ys[aisle[0]]
        order += aisle if at_front else aisle[::-1]
        if length < 2 * reach:
            at_front = not at_front
    return order


POLICIES = {"return": return_policy, "s_shape": s_shape, "midpoint": midpoint,
            "largest_gap": largest_gap, "combined": combined}
