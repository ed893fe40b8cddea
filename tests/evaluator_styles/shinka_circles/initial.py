# EVOLVE-BLOCK-START
"""Pack 5 circles in the unit square, maximising the sum of their radii."""
import numpy as np


def construct_packing():
    centers = np.array([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75], [0.5, 0.5]])
    return centers, radii_for(centers)


def radii_for(centers):
    n = len(centers)
    radii = np.array([min(x, y, 1 - x, 1 - y) for x, y in centers])
    for i in range(n):
        for j in range(i + 1, n):
            d = np.linalg.norm(centers[i] - centers[j])
            if radii[i] + radii[j] > d:
                scale = d / (radii[i] + radii[j])
                radii[i] *= scale
                radii[j] *= scale
    return radii
# EVOLVE-BLOCK-END


def run_packing():
    centers, radii = construct_packing()
    return centers, radii, float(np.sum(radii))
