"""A run dir: a campaign's folder (`config.yaml`, `programs.db`, `campaign.log`, `best.py`, `report.html`),
and the one way to read its config and open its database, for the campaign, every CLI verb and replay."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from evolve.config import Config, to_config
from evolve.errors import RunDirError
from evolve.storage.database import ProgramDatabase

__all__ = ["campaign_name", "database_url", "load_config", "open_database", "upgrade_database", "write_config"]

CONFIG = "config.yaml"
DATABASE = "programs.db"


def campaign_name(config: Config, run_dir: str | Path) -> str:
    """The campaign's name in its database: `name`, or `<problem>/<run dir name>`."""
    return config.name or f"{config.problem.name}/{Path(run_dir).name}"


def database_url(config: Config, run_dir: str | Path) -> str:
    """The database URL of a run: `database.url`, or `programs.db` in the run dir."""
    return config.database.url or f"sqlite:///{(Path(run_dir) / DATABASE).resolve()}"


def write_config(config: Config, run_dir: str | Path) -> Path:
    """Write the composed config, with the campaign's name filled in, as the run dir's record."""
    path = Path(run_dir) / CONFIG
    named = dataclasses.replace(config, name=campaign_name(config, run_dir))
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(OmegaConf.to_yaml(OmegaConf.structured(named)))
    os.replace(tmp, path)  # whole or not at all, even if the process is killed while it writes
    return path


def load_config(run_dir: str | Path, overrides: list[str] | None = None, *, find_problem: bool = True) -> Config:
    """Read a run dir's config (with `KEY=VALUE` overrides); its problem folder is looked up anew,
    since the folder may have moved since the run started (unless `find_problem` is False: a reader
    that needs only the config's figures, such as `evolve status`, skips the search)."""
    path = Path(run_dir)
    if not (path / CONFIG).is_file():
        raise RunDirError(f"{path} is not an evolve run dir (no {CONFIG}); runs are under runs/<problem>/")
    raw = OmegaConf.load(path / CONFIG)
    try:
        if overrides:
            raw = OmegaConf.merge(OmegaConf.structured(Config), raw, OmegaConf.from_dotlist(overrides))
        if not isinstance(raw, DictConfig):
            raise RunDirError(f"{path / CONFIG} holds a list, not a config mapping; restore the run's {CONFIG}")
        config = to_config(raw)
    except OmegaConfBaseException as exc:
        raise RunDirError(f"bad override for {path}: {str(exc).splitlines()[0]}") from None
    if not find_problem:
        return config
    from evolve.problems import discover

    problem = discover().get(config.problem.name)
    if problem is not None:
        config.problem.directory = problem.directory
    return config


def open_database(config: Config, run_dir: str | Path, *, read_only: bool = False,
                  indexes: bool = True) -> ProgramDatabase:
    """Open the run's database with its URL, campaign name and features.

    Read-only, nothing is created: a run dir whose campaign never started raises `RunDirError`. With
    `indexes=False` the in-memory indexes wait until something uses them (`evolve status` reads only
    aggregates, in SQL).
    """
    if read_only:
        _must_exist(config, run_dir)
    return ProgramDatabase(database_url(config, run_dir), campaign_name(config, run_dir), config.problem.name,
                           config.database, config.problem.features, read_only=read_only,
                           indexes=indexes)


def upgrade_database(config: Config, run_dir: str | Path) -> list[str]:
    """Run the schema migrations an older evolve's database lacks (Alembic; a database from before Alembic
    is completed and stamped first); return the tables and columns added. A newer database is refused."""
    from evolve.storage._orm import head, make_engine, missing_columns, revision

    _must_exist(config, run_dir)
    url = database_url(config, run_dir)
    engine = make_engine(url, read_only=True)  # refuses a newer evolve's database
    try:
        missing, current = missing_columns(engine), revision(engine, url)
    finally:
        engine.dispose()
    if missing or current != head():
        make_engine(url).dispose()  # a writable engine runs the migrations
    return missing or ([f"schema revision {head()}"] if current != head() else [])


def _must_exist(config: Config, run_dir: str | Path) -> None:
    if config.database.url is None and not (Path(run_dir) / DATABASE).is_file():
        raise RunDirError(f"{run_dir} has no {DATABASE} yet; the campaign never started")
