"""Shared fixtures: one local Ray instance per test session, the circle_packing problem, paths."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# caches (warehouse_tsp's best-known routes) belong to the test session, never to the user's home
os.environ["EVOLVE_CACHE_DIR"] = tempfile.mkdtemp(prefix="evolve-test-cache-")
EVOLVE = str(Path(sys.executable).with_name("evolve"))


@pytest.fixture(scope="session")
def ray_address() -> str:
    """Start one local Ray instance for the whole test session and return its GCS address."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level="ERROR", log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def circle_problem():
    """The built-in circle_packing problem config."""
    from evolve.problems import get_problem

    return get_problem("circle_packing")


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: quiet Ray, no plugins from the test machine."""
    env = dict(os.environ)
    env["EVOLVE_DISABLE_PLUGINS"] = "1"
    env["RAY_DEDUP_LOGS"] = "0"
    return env


@pytest.fixture
def evolve_bin() -> str:
    """The `evolve` console script of this interpreter's environment."""
    path = EVOLVE if os.path.exists(EVOLVE) else shutil.which("evolve")
    assert path, "the evolve console script is not installed; run scripts/test.sh"
    return path
