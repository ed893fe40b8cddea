"""alphaevolve circle_packing_rect's style: `from importlib import __import__` after putting the program's
folder on sys.path, and a helper module that loads the program again with importlib.util."""
import os
import sys
import time
from importlib import __import__

import numpy as np
from rect_helpers import program_length


def evaluate(program_path: str):
    try:
        folder = os.path.dirname(os.path.abspath(program_path))
        name = os.path.splitext(os.path.basename(program_path))[0]
        try:
            sys.path.insert(0, folder)
            program = __import__(name)
            started = time.time()
            found = program.circles()
            eval_time = time.time() - started
        finally:
            if folder in sys.path:
                sys.path.remove(folder)
        found = found if isinstance(found, np.ndarray) else np.array(found)
        if found.shape != (4, 3) or program_length(program_path) != 4:
            raise ValueError(f"expected 4 circles (x, y, r), got shape {found.shape}")
        width = np.max(found[:, 0] + found[:, 2]) - np.min(found[:, 0] - found[:, 2])
        height = np.max(found[:, 1] + found[:, 2]) - np.min(found[:, 1] - found[:, 2])
        if width + height > 2 + 1e-6:
            raise ValueError("the circles do not fit a rectangle of perimeter 4")
        for i in range(4):
            for j in range(i + 1, 4):
                if np.hypot(*(found[i, :2] - found[j, :2])) < found[i, 2] + found[j, 2] - 1e-6:
                    raise ValueError(f"circles {i} and {j} overlap")
        return {"radii_sum": float(found[:, 2].sum()), "combined_score": float(found[:, 2].sum()),
                "eval_time": eval_time}
    except Exception as e:
        return {"combined_score": 0.0, "error": str(e)}
