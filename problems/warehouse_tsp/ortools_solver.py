"""The OR-Tools reference: routing with PATH_CHEAPEST_ARC, then GUIDED_LOCAL_SEARCH (or another
metaheuristic) under a time limit.

When PATH_CHEAPEST_ARC finds no first solution (it can dead-end on precedence), LOCAL_CHEAPEST_INSERTION
starts the search instead.

Capacity is a dimension over several trips (vehicles) from the depot, precedence a rank dimension whose
cumul may only grow along a trip, and start != end goes through the index manager.
"""

from __future__ import annotations

import math

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from problems.warehouse_tsp.instances import Tour
from problems.warehouse_tsp.routes import UNLOAD

__all__ = ["METAHEURISTICS", "solve_ortools"]

METAHEURISTICS = ("GUIDED_LOCAL_SEARCH", "SIMULATED_ANNEALING", "TABU_SEARCH")

_SCALE = 1000  # millimetres: the solver works on integers


def solve_ortools(tour: Tour, seconds: float = 1.0, metaheuristic: str = "GUIDED_LOCAL_SEARCH") -> list[int]:
    """A route in reference form (pick index + 1, and 0 to unload), or [] when the solver finds none.

    `metaheuristic` names a `LocalSearchMetaheuristic` (see `METAHEURISTICS`) that runs for `seconds`.
    """
    n = tour.n
    if n == 0:
        return []
    matrix = [[int(round(v * _SCALE)) for v in row] for row in tour.matrix]  # noqa: RUF046 (numpy 1 rounds to a float)
    if tour.capacity is not None:
        trips = min(n, math.ceil(sum(tour.weights) / tour.capacity) + 2)
        manager = pywrapcp.RoutingIndexManager(n + 1, trips, 0)
    elif tour.start != tour.end:
        manager = pywrapcp.RoutingIndexManager(n + 2, 1, [0], [n + 1])
    else:
        manager = pywrapcp.RoutingIndexManager(n + 1, 1, 0)
    routing = pywrapcp.RoutingModel(manager)

    def distance(i: int, j: int) -> int:
        return matrix[manager.IndexToNode(i)][manager.IndexToNode(j)]

    transit = routing.RegisterTransitCallback(distance)
    routing.SetArcCostEvaluatorOfAllVehicles(transit)
    if tour.capacity is not None:
        def demand(i: int) -> int:
            node = manager.IndexToNode(i)
            return math.ceil(tour.weights[node - 1] * 100) if 1 <= node <= n else 0

        routing.AddDimensionWithVehicleCapacity(
            routing.RegisterUnaryTransitCallback(demand), 0,
            [math.floor(tour.capacity * 100)] * manager.GetNumberOfVehicles(), True, "load")
    if tour.precedence:
        zero = routing.RegisterTransitCallback(lambda i, j: 0)
        top = max(tour.classes)
        routing.AddDimension(zero, top, top, False, "rank")
        rank = routing.GetDimensionOrDie("rank")
        for pick in range(n):
            c = tour.classes[pick]
            index = manager.NodeToIndex(pick + 1)
            rank.CumulVar(index).SetRange(c, c)
            # the arcs the rank dimension forbids anyway; pruning them helps the first solution
            lower = [manager.NodeToIndex(q + 1) for q in range(n) if tour.classes[q] < c]
            if lower:
                routing.NextVar(index).RemoveValues(lower)
    solution = None
    for strategy in (routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC,
                     routing_enums_pb2.FirstSolutionStrategy.LOCAL_CHEAPEST_INSERTION):
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.first_solution_strategy = strategy
        params.local_search_metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic, metaheuristic)
        params.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
        solution = routing.SolveWithParameters(params)
        if solution is not None:
            break  # PATH_CHEAPEST_ARC can dead-end on precedence; cheapest insertion then starts it
    if solution is None:
        return []
    route: list[int] = []
    for vehicle in range(manager.GetNumberOfVehicles()):
        index = routing.Start(vehicle)
        trip = []
        while not routing.IsEnd(index):
            node = manager.IndexToNode(index)
            if 1 <= node <= n:
                trip.append(node)
            index = solution.Value(routing.NextVar(index))
        if trip:
            if route:
                route.append(UNLOAD)
            route += trip
    return route
