"""Smooth a noisy signal online."""
import numpy as np
from scipy.ndimage import uniform_filter1d


# EVOLVE-BLOCK-START
def smooth(signal, window_size):
    return uniform_filter1d(np.asarray(signal, dtype=float), size=window_size, mode="nearest")
# EVOLVE-BLOCK-END


def run_filter(signal, window_size=5, scale=1.0):
    return smooth(signal, window_size) * scale
