"""circle_packing's style: the program runs in a Python subprocess of the evaluator (refused)."""
import json
import subprocess
import sys


def evaluate(program_path):
    script = f"import json, runpy; print(json.dumps(runpy.run_path({program_path!r})['run_packing']()))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    radii = json.loads(done.stdout)
    return {"combined_score": sum(radii)}
