"""The exceptions evolve raises. One root, specific subclasses; each message says what and how to fix."""

from __future__ import annotations

__all__ = [
    "CampaignNotFound",
    "ConfigError",
    "DatabaseCorrupt",
    "DatabaseUnavailable",
    "DiskFull",
    "EditError",
    "EvaluatorFailed",
    "EvolveError",
    "InitialProgramError",
    "Interrupted",
    "ModelsResting",
    "ProblemNotFound",
    "ProposerError",
    "RayLost",
    "ReadOnlyDatabase",
    "RunDirError",
    "RunLocked",
]


class EvolveError(Exception):
    """Root of every error evolve raises on purpose; the CLI prints these as one line."""


class ConfigError(EvolveError):
    """A configuration value is missing or wrong. The message names the key and the fix."""


class ProblemNotFound(EvolveError):
    """No problem with that name: built-ins live in `problems/`, plugins in the `evolve.problems`
    entry-point group. `evolve problems` lists the available ones."""


class InitialProgramError(EvolveError):
    """The problem's initial program did not evaluate to a valid score, so there is nothing to evolve
    from. Fix the initial program or its evaluator; `evolve run` stops before any proposal."""


class EditError(EvolveError):
    """A proposal's edit could not be applied; the reason goes back into a later prompt."""


class ProposerError(EvolveError):
    """A proposer (LLM or mutator) failed to produce a proposal; the campaign records it and goes on.

    `model` names the model that failed, when one did.
    """

    def __init__(self, message: str, model: str = "") -> None:
        super().__init__(message)
        self.model = model


class RunDirError(EvolveError):
    """A run directory is missing or is not an evolve run (no config.yaml or programs database)."""


class CampaignNotFound(RunDirError):
    """A database opened read-only holds no campaign of that name, or has an older schema. Nothing was
    created: check the run dir (or `name`), or upgrade an old database with `evolve upgrade RUN_DIR`."""


class ReadOnlyDatabase(EvolveError):
    """A write was asked of a database opened read-only (`evolve status`, `best`, `report`, replay)."""


class DatabaseUnavailable(EvolveError):
    """The database did not answer for `database.retry_seconds` (a server down, a connection that keeps
    dropping, a SQLite file another process keeps locked). Every committed program is kept: once the
    database answers again, `evolve resume RUN_DIR`."""


class DiskFull(DatabaseUnavailable):
    """No space left on a device the campaign writes to (the database's, or the run dir's). Every committed
    program is kept: free some space, then `evolve resume RUN_DIR`."""


class DatabaseCorrupt(EvolveError):
    """A SQLite database file is damaged (truncated, overwritten). `evolve repair RUN_DIR` copies every
    readable row into a new file and keeps the damaged one beside it."""


class RunLocked(EvolveError):
    """Another live process is running this campaign (one controller per run); the message names its
    host and pid. Wait for it, or stop it, then `evolve resume RUN_DIR`."""


class ModelsResting(EvolveError):
    """Every model of the proposer has been resting or failing for `llm.max_wait_seconds`: the endpoints
    are down or wrong. The message carries each model's last error."""


class EvaluatorFailed(EvolveError):
    """The problem's trusted evaluator raised on `max_evaluator_errors` candidates in a row; its
    traceback is in campaign.log. Fix the evaluator, then `evolve resume RUN_DIR`."""


class RayLost(EvolveError):
    """Ray's cluster stopped answering (its head is gone) or holds no evaluation worker any more: the
    evaluation that met it runs again in this process's slots, and Ray is tried again later."""


class Interrupted(EvolveError):
    """A signal (SIGINT, SIGTERM, SIGHUP) stopped the campaign; every committed program is kept.

    `signal_number` is the signal's number (the CLI exits with 128 + it).
    """

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.signal_number = signal_number
