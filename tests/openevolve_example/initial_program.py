"""Search for the minimum of f(x, y) = sin(x) * cos(y) + sin(x * y) + (x^2 + y^2) / 20 on [-5, 5]^2."""

import numpy as np


# EVOLVE-BLOCK-START
def search_algorithm(iterations=400, bounds=(-5, 5)):
    """Random search: keep the best of uniformly drawn points."""
    rng = np.random.default_rng(1)
    best_x, best_y = rng.uniform(bounds[0], bounds[1], size=2)
    best_value = evaluate_function(best_x, best_y)
    for _ in range(iterations):
        x, y = rng.uniform(bounds[0], bounds[1], size=2)
        value = evaluate_function(x, y)
        if value < best_value:
            best_x, best_y, best_value = x, y, value
    return best_x, best_y, best_value
# EVOLVE-BLOCK-END


def evaluate_function(x, y):
    return np.sin(x) * np.cos(y) + np.sin(x * y) + (x ** 2 + y ** 2) / 20


def run_search():
    x, y, value = search_algorithm()
    return x, y, value
