"""Pack 6 circles in the unit square, maximising the sum of their radii."""
import numpy as np


# EVOLVE-BLOCK-START
def construct_packing():
    centers = np.array([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75], [0.5, 0.5], [0.5, 0.1]])
    radii = np.full(6, 0.08)
    return centers, radii
# EVOLVE-BLOCK-END


def run_packing():
    centers, radii = construct_packing()
    return centers, radii, float(np.sum(radii))
