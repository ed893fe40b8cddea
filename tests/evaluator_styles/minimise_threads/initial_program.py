"""Minimise a bumpy function of two variables."""
import numpy as np


# EVOLVE-BLOCK-START
def search_algorithm(iterations=200, bounds=(-5, 5)):
    rng = np.random.default_rng(3)
    best_x, best_y = rng.uniform(bounds[0], bounds[1], size=2)
    best = f(best_x, best_y)
    for _ in range(iterations):
        x, y = rng.uniform(bounds[0], bounds[1], size=2)
        if f(x, y) < best:
            best_x, best_y, best = x, y, f(x, y)
    return best_x, best_y, best
# EVOLVE-BLOCK-END


def f(x, y):
    return np.sin(x) * np.cos(y) + np.sin(x * y) + (x ** 2 + y ** 2) / 20


def run_search():
    return search_algorithm()
