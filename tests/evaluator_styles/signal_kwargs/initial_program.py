"""Smooth a noisy signal online."""
import numpy as np
from scipy.ndimage import uniform_filter1d


# EVOLVE-BLOCK-START
def smooth(signal, window_size):
    x = np.asarray(signal, dtype=float)
    width = max(1, int(window_size * 0.5))
    first = uniform_filter1d(x, size=width, mode="nearest")
    return 0.5 * first + 0.5 * uniform_filter1d(first, size=width + 2, mode="nearest")
# EVOLVE-BLOCK-END


def run_filter(signal, window_size=5, scale=1.0):
    return smooth(signal, window_size) * scale
