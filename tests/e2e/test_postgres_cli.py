"""A campaign on PostgreSQL through the real `evolve` command: run, kill -9, status, resume, upgrade, best."""

from __future__ import annotations

import subprocess
import time

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.test_cli import evolve

pytestmark = pytest.mark.e2e


def _rows(url: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("select id, iteration, status, code_hash from programs "
                                                        "order by id"))]
    except Exception:  # noqa: BLE001 (the schema is being created)
        return []
    finally:
        engine.dispose()


def _wait_for_rows(url: str, count: int, proc: subprocess.Popen, limit: float = 180.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if len(_rows(url)) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not reach {count} rows")


def test_a_campaign_on_postgresql_survives_kill_9_and_resumes(evolve_bin, cli_env, ray_address, postgres_url,
                                                               tmp_path):
    run_dir = tmp_path / "run"
    args = ["problem=circle_packing", "budget.iterations=30", "seed=3", f"hydra.run.dir={run_dir}",
            f"ray.address={ray_address}", f"database.url={postgres_url}"]
    proc = subprocess.Popen([evolve_bin, "run", *args], env=cli_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_rows(postgres_url, 8, proc)
    proc.kill()  # SIGKILL: no tear-down at all; the run_locks row stays behind, its pid dead
    proc.wait(timeout=30)
    first = _rows(postgres_url)
    assert 8 <= len(first) < 31 and not (run_dir / "programs.db").exists()

    status = evolve(evolve_bin, cli_env, "status", str(run_dir))
    assert status.returncode == 0, status.stderr
    assert f"{len(first) - 1} of 30" in status.stdout
    assert _rows(postgres_url) == first  # read-only: nothing written

    out = evolve(evolve_bin, cli_env, "resume", str(run_dir), f"ray.address={ray_address}")
    assert out.returncode == 0, out.stderr
    final = _rows(postgres_url)
    assert final[: len(first)] == first and len(final) == 31
    assert len({r[1] for r in final}) == 31  # every iteration number once
    evaluated = [r[3] for r in final if r[2] in ("valid", "invalid")]
    assert len(evaluated) == len(set(evaluated)), "a program was evaluated twice"

    upgrade = evolve(evolve_bin, cli_env, "upgrade", str(run_dir))
    assert upgrade.returncode == 0 and "already up to date" in upgrade.stdout
    best = evolve(evolve_bin, cli_env, "best", str(run_dir), "--code")
    assert best.returncode == 0 and best.stdout == (run_dir / "best.py").read_text()
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from run_locks")).scalar() == 0  # released at the end
        assert conn.execute(text("select upto from tallies")).scalar() == final[-1][0]  # kept at the stop
        calls = conn.execute(text("select count(*) from llm_calls")).scalar()
        prompts = conn.execute(text("select count(*) from llm_messages")).scalar()
        assert calls == prompts >= 30  # every call's prompt, kept compressed (and the calls lost in flight too)
    engine.dispose()
