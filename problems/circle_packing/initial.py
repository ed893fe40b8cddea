"""Circle packing: 26 circles in the unit square, maximise the sum of their radii.

`solve(n)` returns one `[x, y, r]` per circle. A ring layout is refined by a penalty method that grows
the radii while pushing overlapping circles apart; the final radii are shrunk until the packing is
strictly feasible.
"""

import numpy as np


# EVOLVE-BLOCK-START
def initial_centers(n):
    """A centre circle, then rings of circles around it, slightly jittered."""
    rng = np.random.default_rng(7)
    centers = [[0.5, 0.5]]
    for count, radius, phase in ((8, 0.22, 0.0), (17, 0.41, 0.2)):
        for k in range(count):
            angle = 2.0 * np.pi * k / count + phase
            centers.append([0.5 + radius * np.cos(angle), 0.5 + radius * np.sin(angle)])
    centers = np.array(centers[:n], dtype=float)
    centers += rng.normal(0.0, 0.01, centers.shape)
    return np.clip(centers, 0.05, 0.95)


def refine(centers, steps=300, lr=0.004, penalty=20.0, growth=1.02, max_step=0.01, decay=0.995):
    """Gradient ascent on sum(r) minus a growing penalty on overlaps and walls, with bounded steps."""
    n = len(centers)
    x = centers.copy()
    r = np.full(n, 0.06)
    off_diagonal = 1.0 - np.eye(n)
    for _ in range(steps):
        diff = x[:, None, :] - x[None, :, :]
        dist = np.sqrt((diff ** 2).sum(-1)) + np.eye(n)
        overlap = np.maximum(0.0, r[:, None] + r[None, :] - dist) * off_diagonal
        low = np.maximum(0.0, r[:, None] - x)
        high = np.maximum(0.0, x + r[:, None] - 1.0)
        grad_r = 1.0 - 2.0 * penalty * (overlap.sum(1) + low.sum(1) + high.sum(1))
        push = (overlap / dist)[:, :, None] * diff
        grad_x = 2.0 * penalty * (push.sum(1) + low - high)
        r = np.maximum(r + np.clip(lr * grad_r, -max_step, max_step), 0.0)
        x = np.clip(x + np.clip(lr * grad_x, -max_step, max_step), 0.0, 1.0)
        penalty *= growth
        max_step *= decay
    return x, r
# EVOLVE-BLOCK-END


def feasible_radii(centers, radii):
    """Shrink radii until no circle leaves the square and no two overlap (one pass suffices)."""
    r = np.minimum(radii, np.minimum(centers, 1.0 - centers).min(axis=1))
    r = np.maximum(r, 0.0)
    n = len(r)
    for i in range(n):
        for j in range(i + 1, n):
            d = float(np.hypot(*(centers[i] - centers[j])))
            if r[i] + r[j] > d:
                scale = d / (r[i] + r[j])
                r[i] *= scale
                r[j] *= scale
    return r * (1.0 - 1e-9)


def solve(n=26):
    """Return the packing as a list of [x, y, r]."""
    centers = initial_centers(n)
    centers, radii = refine(centers)
    radii = feasible_radii(centers, radii)
    return [[float(x), float(y), float(r)] for (x, y), r in zip(centers, radii)]
