"""Ray accelerates, never endangers: a campaign whose Ray cannot be joined, or whose Ray head is lost
mid-campaign, finishes in its local slots with one line naming the cause, nothing lost or evaluated twice;
Ray's own output stays in campaign.log."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.ray_cluster import LocalCluster
from tests.e2e.test_cli import rows
from tests.e2e.test_cluster import ITERATIONS, _evaluated, _wait

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _checked(run_dir: Path, stderr: str, evolve_bin: str, env: dict[str, str]) -> list[str]:
    """Assert each iteration is committed once and stderr holds evolve's lines only; return those."""
    numbers = [r[1] for r in rows(run_dir / "programs.db")]
    assert sorted(numbers) == list(range(ITERATIONS + 1)), numbers  # none lost, none twice
    lines = stderr.splitlines()
    assert lines and all(line.startswith(("evolve: ", "Ray: the Ray cluster at ")) for line in lines), stderr
    status = subprocess.run([evolve_bin, "status", str(run_dir)], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert status.returncode == 0 and "evaluations in local slots since" in status.stdout, status.stdout
    return lines


@pytest.mark.timeout(900)
def test_a_ray_address_where_nothing_answers_leaves_the_campaign_in_its_local_slots(evolve_bin, cli_env, tmp_path):
    run_dir = tmp_path / "run"
    address = f"127.0.0.1:{_free_port()}"
    done = subprocess.run([evolve_bin, "run", f"ray.address={address}", f"budget.iterations={ITERATIONS}",
                           f"hydra.run.dir={run_dir}", "progress=off"], env=cli_env, cwd=ROOT, capture_output=True,
                          text=True, timeout=800, check=False)
    assert done.returncode == 0, done.stderr
    ray = [line for line in _checked(run_dir, done.stderr, evolve_bin, cli_env) if line.startswith("evolve: Ray")]
    assert re.fullmatch(f"evolve: Ray did not start: ConnectionError: nothing answers at ray.address={address} "
                        r"\(Connection refused\); start the cluster's head there, or leave ray.address unset for a "
                        r"private instance; evaluations go on in this process's \d+ slots?; Ray is tried again in "
                        "60 s", ray[0]), ray
    assert ray[0][len("evolve: "):] in (run_dir / "campaign.log").read_text()


@pytest.mark.timeout(1200)  # a `ray start` head and its loss noticed: room for a loaded machine
def test_a_ray_head_lost_mid_campaign_leaves_it_finishing_in_local_slots(evolve_bin, cli_env, tmp_path):
    run_dir = tmp_path / "run"
    db = run_dir / "programs.db"
    with LocalCluster(workers=0, cpus=2) as cluster:
        head = cluster.nodes[0]
        env = {**cli_env, **cluster.env, "PYTHONPATH": str(ROOT)}
        # every evaluation takes the evaluator a second: the head's workers hold one most of the time
        proc = subprocess.Popen([evolve_bin, "run", "problem.evaluator=tests.e2e.faulty:Slow", "ray.address=auto",
                                 f"budget.iterations={ITERATIONS}", f"hydra.run.dir={run_dir}", "progress=off"],
                                env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: sum(r[3] == head.node_id for r in _evaluated(db)) >= 3, proc, "three evaluations on Ray")
            cluster.kill(head)  # as a crash would: the GCS, the raylet and Ray's workers with it
            killed = time.monotonic()
            _, err = proc.communicate(timeout=900)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    ray = [line for line in _checked(run_dir, err, evolve_bin, cli_env) if line.startswith("evolve: Ray")]
    assert ray[0].startswith("evolve: Ray was lost: Ray's head stopped answering"), ray
    assert re.search(r"evaluations go on in this process's \d+ slots?; Ray is tried again in 60 s$", ray[0]), ray
    after = [r for r in _evaluated(db) if r[3] is None and r[1] > 0]
    assert after, "nothing was scored in the local slots after the head was lost"
    print(f"\nhead lost; the campaign finished {time.monotonic() - killed:.0f} s later, {len(after)} evaluations "
          f"in local slots; stderr:\n{err}")


@pytest.mark.timeout(900)
def test_a_cluster_that_refuses_the_drivers_token_is_named_as_such(cli_env, tmp_path):
    join = ("import sys\nfrom evolve.config import RayConfig\nfrom evolve.errors import ConfigError\n"
            "from evolve.evaluation.ray_pool import connect\n"
            "try:\n    connect(RayConfig(address=sys.argv[1]))\nexcept ConfigError as exc:\n    print(exc)\n")
    with LocalCluster(workers=0, cpus=1) as cluster:
        env = {**{k: v for k, v in cli_env.items() if not k.startswith("RAY_")}, "PYTHONPATH": str(ROOT),
               "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64, "RAY_TMPDIR": cluster.dir}  # another token
        done = subprocess.run([sys.executable, "-c", join, cluster.address], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=600, check=False)
    assert done.stdout.strip() == (
        f"the Ray cluster at ray.address={cluster.address} refused this driver (Authentication token is missing or "
        "incorrect); set RAY_AUTH_MODE=token and the head's token (RAY_AUTH_TOKEN, or ~/.ray/auth_token), as every "
        "node has them"), (done.stdout, done.stderr[-2000:])
