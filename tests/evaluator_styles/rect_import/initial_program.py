"""Place 4 circles (x, y, r) inside a rectangle of perimeter 4, maximising the sum of radii."""
import numpy as np


# EVOLVE-BLOCK-START
def circles():
    return np.array([[0.2, 0.2, 0.2], [0.6, 0.2, 0.2], [0.2, 0.6, 0.2], [0.6, 0.6, 0.15]])
# EVOLVE-BLOCK-END
