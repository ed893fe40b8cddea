"""Warehouse picker routing: the order in which a picker visits the picks of one tour.

`solve(instance)` returns the pick ids in visiting order. `instance["distance"]` holds the travel
distances in metres: row and column 0 is the start depot, 1..n are the picks in the order of
`instance["picks"]`, n+1 is the end depot. With a cart `capacity`, put 0 in the route to go back to the
start depot and unload. With `precedence`, pick classes must not decrease within a trip (heavy 0 first,
fragile 2 last). The seed is the warehouse's current rule: greedy nearest neighbour, step by step, with
the weights of its scoring rule at zero.
"""


# EVOLVE-BLOCK-START
AISLE_CHANGE_PENALTY = 0.0  # metres added to a pick in another aisle than the picker's
RETURN_PULL = 0.0  # weight of a pick's distance to the end depot (positive: far picks first)
ISOLATION_WEIGHT = 0.0  # weight of a pick's distance to its nearest other pick


def solve(instance):
    """Walk to the best-scoring remaining pick; ties go to the current aisle, then the lower slot, aisle, weight."""
    picks = instance["picks"]
    dist = instance["distance"]
    n = len(picks)
    capacity = instance["capacity"]
    precedence = instance["precedence"]
    isolation = [min((dist[i + 1][j + 1] for j in range(n) if j != i), default=0.0) for i in range(n)]
    to_end = [dist[i + 1][n + 1] for i in range(n)]
    remaining = set(range(n))
    route = []
    here, aisle, load = 0, instance["start"]["aisle"], 0.0
    while remaining:
        candidates = remaining
        if precedence:
            level = min(picks[i]["class"] for i in remaining)
            candidates = [i for i in remaining if picks[i]["class"] == level]
        row = dist[here]

        def score(i):
            other_aisle = picks[i]["aisle"] != aisle
            cost = row[i + 1] + AISLE_CHANGE_PENALTY * other_aisle - RETURN_PULL * to_end[i]
            return (cost + ISOLATION_WEIGHT * isolation[i], other_aisle, picks[i]["y"], picks[i]["aisle"],
                    picks[i]["weight"])

        best = min(candidates, key=score)
        if capacity is not None and load + picks[best]["weight"] > capacity:
            route.append(0)
            here, aisle, load = 0, instance["start"]["aisle"], 0.0
            continue
        route.append(picks[best]["id"])
        load += picks[best]["weight"]
        here, aisle = best + 1, picks[best]["aisle"]
        remaining.remove(best)
    return route
# EVOLVE-BLOCK-END
