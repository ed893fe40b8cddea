"""Warehouse picker routing: the order in which a picker visits the picks of one tour.

`solve(instance)` returns the pick ids in visiting order. `instance["distance"]` holds the travel
distances in metres: row and column 0 is the start depot, 1..n are the picks in the order of
`instance["picks"]`, n+1 is the end depot. With a cart `capacity`, put 0 in the route to go back to the
start depot and unload. With `precedence`, pick classes must not decrease within a trip (heavy 0 first,
fragile 2 last). The seed is the warehouse's current rule: greedy nearest neighbour, step by step.
"""


# EVOLVE-BLOCK-START
def solve(instance):
    """Always walk to the nearest remaining pick; ties go to the current aisle, the lower slot, the lower aisle."""
    picks = instance["picks"]
    dist = instance["distance"]
    capacity = instance["capacity"]
    precedence = instance["precedence"]
    remaining = set(range(len(picks)))
    route = []
    here, aisle, load = 0, instance["start"]["aisle"], 0.0
    while remaining:
        candidates = remaining
        if precedence:
            level = min(picks[i]["class"] for i in remaining)
            candidates = [i for i in remaining if picks[i]["class"] == level]
        row = dist[here]
        best = min(candidates, key=lambda i: (row[i + 1], picks[i]["aisle"] != aisle, picks[i]["y"], picks[i]["aisle"]))
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
