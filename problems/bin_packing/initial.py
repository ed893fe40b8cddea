"""Online bin packing: the priority of each bin for the item that has just arrived.

`priority(item, bins)` gets the item's size and `bins`, the remaining capacities of the open bins that
can hold it (in the order they were opened) followed by one empty bin (so `bins[-1]` is the bin
capacity), and returns one number per bin. The item goes to the bin with the highest priority (the
first on ties); choosing the empty bin opens a new one. The seed is best fit, FunSearch's starting
point: the tightest bin wins, with the weights of its extra terms at zero.
"""

import numpy as np


# EVOLVE-BLOCK-START
SLACK_WEIGHT = 1.0  # priority lost per unit of slack (space left after the item, as a share of capacity)
AWKWARD_PENALTY = 0.0  # priority lost when the slack is too small to be useful but not a near-perfect fit
NEAR_PERFECT = 0.02  # slack at or below this share of capacity counts as a perfect fit
USEFUL_SLACK = 0.15  # slack below this share of capacity is unlikely to be filled later
NEW_BIN_PENALTY = 0.0  # priority lost by the empty bin


def priority(item, bins):
    """Best fit: minus the slack each bin would have left, with optional shaping terms."""
    bins = np.asarray(bins, dtype=float)
    capacity = bins.max()  # the empty bin's
    slack = (bins - item) / capacity
    score = -SLACK_WEIGHT * slack
    awkward = (slack > NEAR_PERFECT) & (slack < USEFUL_SLACK)
    score = score - AWKWARD_PENALTY * awkward
    score = score - NEW_BIN_PENALTY * (bins == capacity)  # only the empty bin is at full capacity
    return score
# EVOLVE-BLOCK-END
