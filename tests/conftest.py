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

    from evolve.observe.dashboard import loopback_pinned

    if not ray.is_initialized():
        with loopback_pinned("local"):  # Ray would swap 127.0.0.1 for the machine's outward address
            ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
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


DATABASES = ("sqlite", "postgresql")  # every database test runs on both (like Optuna's STORAGE_MODES)


def _postgres_server() -> str:
    """The PostgreSQL URL of scripts/postgres.sh, or skip (fail under CI) saying why there is none."""
    url = os.environ.get("EVOLVE_TEST_POSTGRES_URL", "")
    reason = "" if url else "EVOLVE_TEST_POSTGRES_URL is not set (scripts/test.sh sets it from scripts/postgres.sh)"
    if url:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 (any failure to connect skips the PostgreSQL tests with its reason)
            reason = f"PostgreSQL at EVOLVE_TEST_POSTGRES_URL does not answer: {str(exc).splitlines()[0]}"
        finally:
            engine.dispose()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must test PostgreSQL (bash scripts/postgres.sh)")
        pytest.skip(reason)
    return url


def _fresh_postgres(server: str):
    """Create an empty database on the server for one test; return its URL and a function that drops it."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"evolve_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(server).set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path) -> str:
    """A fresh, empty database for one test: a SQLite file in tmp_path, or a PostgreSQL database created
    for the test and dropped after it (the server: EVOLVE_TEST_POSTGRES_URL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'programs.db'}"
        return
    url, drop = _fresh_postgres(_postgres_server())
    yield url
    drop()


@pytest.fixture
def postgres_url() -> str:
    """A fresh, empty PostgreSQL database for one test, dropped after it."""
    url, drop = _fresh_postgres(_postgres_server())
    yield url
    drop()
