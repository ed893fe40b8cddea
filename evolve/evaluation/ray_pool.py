"""Evaluation on Ray: a pool of actors, each holding one evaluator and one sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil

# Ray's C++ failure handler would turn a SIGTERM into a stack dump (and SIGABRT) in the controller, whose
# campaign handles its signals itself; Ray reads this when it is imported
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
# Ray's core worker ends this process (`std::_Exit(1)`) once its cluster's head has not answered for this many
# seconds (Ray's default: 60): a lost head must be the campaign's to handle (it goes on in local slots), never
# the end of the controller
os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(10**9))

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from evaluators.cascade import EvaluationResult
from evolve.config import ProblemConfig, RayConfig, SandboxConfig
from evolve.errors import ConfigError, Interrupted, RayLost
from evolve.evaluation.pool import (
    TASK_EVENTS_ENV,
    Pool,
    evaluator_raised,
    pool_size,
    result_from_data,
    validation_failed,
)
from evolve.evaluation.shutdown import ray_task_ended
from evolve.evaluation.slot import EvaluationSlot
from evolve.observe.dashboard import RayInfo, loopback_pinned
from evolve.observe.logs import quiet_ray
from evolve.program import NODE_METRIC

__all__ = ["EvaluationPool", "EvaluationWorker", "WorkerDied", "connect"]

_log = logging.getLogger(__name__)
CLUSTER_TASK_EVENTS_MS = 50  # a cluster driver's task events report interval (Ray's default: 1000)
_ATTEMPTS = 3  # an evaluation lost with its worker runs at most this often in all
_ACTOR_NUMBERS = itertools.count(1)
_HEAD_PROBE_SECONDS = 15.0  # how long the cluster's head may take to answer before it counts as lost


def connect(config: RayConfig, metadata: dict[str, str] | None = None) -> RayInfo:
    """Start a private local Ray instance (`ray.address` null), or join `auto` or an address; when Ray is
    already up, describe it. `metadata` is the Ray job's (`evolve.observe.dashboard.job_metadata`). Logs, for
    the terminal and campaign.log, where the dashboard is and how to sign in.

    Ray's start-up replaces the SIGTERM handler with one that exits at once; the caller's is put back,
    and a SIGTERM during the start-up raises `Interrupted`. A start that fails leaves nothing connected,
    so that a later call may try again.
    """
    quiet_ray()
    if ray.is_initialized():
        info = _running()
        _log.info("%s", info.describe(), extra={"terminal": True})
        return info
    address = config.address or "local"  # "local": never attach to a cluster a `ray start` left running
    _answers(address)
    if address != "local" and not address.startswith("ray://"):
        # a driver joined to a cluster that outlives it sends its tasks' events this often: its exit waits
        # that long for the last ones to reach the cluster (evolve.evaluation.shutdown), not Ray's default second
        os.environ.setdefault(TASK_EVENTS_ENV, str(CLUSTER_TASK_EVENTS_MS))
    job = ray.job_config.JobConfig(metadata=dict(metadata or {}))
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        with loopback_pinned(address) as pinned, _node_start_room(config.start_timeout):
            if pinned and address != "local":  # Ray sends its token by itself to `auto` only; here it is this machine's
                from ray._private.authentication.authentication_token_setup import (
                    maybe_enable_token_auth_if_token_available,
                )

                maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
            if address == "local":
                context = ray.init(address="local", num_cpus=config.num_cpus,
                                   include_dashboard=config.include_dashboard,
                                   dashboard_host=config.dashboard_host, logging_level=logging.WARNING,
                                   log_to_driver=False, _node_ip_address="127.0.0.1", job_config=job)
            else:
                context = ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, job_config=job)
    except SystemExit as exc:
        _disconnect()
        if exc.code == signal.SIGTERM:
            raise Interrupted("interrupted by SIGTERM", int(signal.SIGTERM)) from None
        raise
    except BaseException as exc:
        _disconnect()
        refused = _token_refused(exc)
        if refused:  # Ray says only "Failed to connect": the reason is deeper in its chain
            raise ConfigError(f"the Ray cluster at ray.address={address} refused this driver ({refused}); set "
                              "RAY_AUTH_MODE=token and the head's token (RAY_AUTH_TOKEN, or ~/.ray/auth_token), "
                              "as every node has them") from None
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    info = RayInfo.from_address_info(dict(getattr(context, "address_info", None) or {}), local=address == "local",
                                     dashboard_url=getattr(context, "dashboard_url", "") or "")
    _log.info("%s", info.describe(), extra={"terminal": True})
    return info


@contextlib.contextmanager
def _node_start_room(seconds: float) -> Iterator[None]:
    """Give a starting node `seconds` to register with its GCS: Ray 2.60 allows a fixed 30 s
    (`raylet_start_wait_time_s` in `ray._private.node.Node.__init__`, "The current node timed out during
    startup"), too few on a loaded machine. Its lookup, `ray._private.services.get_node`, raises
    RuntimeError until the node is registered; while this context is open it retries for `seconds`, as long
    as the raylet this process started lives (it gives its agents a fixed 15 s to report their ports, and
    exits when they do not)."""
    services = ray._private.services
    lookup = services.get_node

    def patient(gcs_address: str, node_id: str) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            try:
                return lookup(gcs_address, node_id)
            except RuntimeError:
                raylets = _raylets()
                if not raylets:  # a joined cluster's node, or a raylet that exited: Ray's own wait says which
                    raise
                if time.monotonic() >= deadline:
                    raise
                if not any(_alive(raylet) for raylet in raylets):
                    raise ConnectionError("Ray's raylet exited during its start-up (on a loaded machine: its "
                                          "agents did not report their ports within its fixed 15 s; see raylet.err "
                                          "in Ray's session logs)") from None
                time.sleep(0.5)

    services.get_node = patient
    try:
        yield
    finally:
        services.get_node = lookup


def _answers(address: str, seconds: float = 10.0) -> None:
    """Raise ConnectionError, naming `address`, when nothing answers at a `host:port` address: Ray itself would
    wait for it without end."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at ray.address={address} ({exc.strerror or exc}); start the "
                              "cluster's head there, or leave ray.address unset for a private instance") from None


def _raylets() -> list[psutil.Process]:
    """The raylets this process started (a private instance's node)."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.name() == "raylet":
                found.append(child)
    return found


def _alive(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return process.status() != psutil.STATUS_ZOMBIE
    return False


def _token_refused(exc: BaseException) -> str:
    """The reason a cluster gave for refusing this driver's token, found along `exc`'s chain ("" when none)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        text = str(cause)
        if "Authentication token" in text or type(cause).__name__ == "AuthenticationError":
            at = text.find("Authentication token")
            return text[at:].split(".")[0] if at >= 0 else " ".join(text.split())[:200]
        cause = cause.__cause__ or cause.__context__
    return ""


def _disconnect() -> None:
    """Leave whatever a failed start or a lost cluster left connected (a private instance's processes stop)."""
    with contextlib.suppress(Exception):
        ray.shutdown()


def _head_answers(seconds: float = _HEAD_PROBE_SECONDS) -> bool:
    """Whether the cluster's head (its GCS) answers within `seconds`; True where this cannot be asked."""
    client = getattr(getattr(ray._private.worker, "global_worker", None), "gcs_client", None)
    if client is None:  # a ray:// client connection: its server reports a lost cluster itself
        return True
    try:
        client.get_all_node_info(timeout=seconds)
    except Exception:  # noqa: BLE001 (a timeout, a refused connection, a closed channel: all say it is gone)
        return False
    return True


def _running() -> RayInfo:
    """The Ray instance this process is already connected to."""
    node = getattr(ray._private.worker, "_global_node", None)  # None on a ray:// client connection
    info = dict(node.address_info) if node is not None else {}
    return RayInfo.from_address_info(info or {"gcs_address": ray.get_runtime_context().gcs_address}, local=False)


def _raise_first(reasons: list[str | None]) -> None:
    for reason in reasons:
        if reason:
            raise ConfigError(reason)


class WorkerDied(Exception):
    """An evaluation actor died while holding a program; it has been replaced."""


@ray.remote(num_cpus=1)
class EvaluationWorker:
    """A Ray actor holding one `EvaluationSlot`: one evaluator instance and one sandbox."""

    def __init__(self, problem: ProblemConfig, sandbox: SandboxConfig, run_seed: int = 0) -> None:
        self.slot = EvaluationSlot(problem, sandbox, run_seed)

    def ready(self) -> str | None:
        """None when the evaluator and sandbox were built, else the one-line reason they were not."""
        return self.slot.error

    def evaluate(self, code: str) -> dict[str, Any]:
        """Score `code` (see `EvaluationSlot.evaluate`); its metrics name the Ray node it ran on."""
        result = self.slot.evaluate(code)
        result["metrics"][NODE_METRIC] = ray.get_runtime_context().get_node_id()
        return result

    def validate(self, code: str) -> dict[str, Any] | None:
        """Score `code` on the problem's validation data (None when it has none)."""
        return self.slot.validate(code)

    def layers(self) -> dict[str, str]:
        """The sandbox's protection report."""
        return self.slot.layers()


class EvaluationPool(Pool):
    """Hands programs to idle actors; sized from the cluster's CPUs unless told.

    A worker that dies (its node went down, a crashed Ray worker process, an out-of-memory kill) is
    replaced, and the program it held is evaluated again on another worker (see `evaluate`). A head that
    stops answering, no worker left, or another fault of Ray's own raises `RayLost` from every call, those
    waiting for a worker included; `shutdown` then disconnects this process from Ray.
    """

    def __init__(self, problem: ProblemConfig, sandbox: SandboxConfig, num_workers: int | None = None,
                 worker_cpus: float = 1.0, ready_timeout: float = 120.0, campaign: str | None = None,
                 run_seed: int = 0) -> None:
        num_workers = pool_size(num_workers, worker_cpus, ray.cluster_resources().get("CPU", 0))
        self.problem = problem
        self.sandbox = sandbox
        self.run_seed = run_seed  # the campaign's seed, for its evaluators
        self._size = num_workers
        self.worker_cpus = worker_cpus
        self.ready_timeout = ready_timeout
        self.campaign = campaign or problem.name  # names its actors and tasks in Ray's view
        self._actors = [self._spawn() for _ in range(num_workers)]
        self._idle: asyncio.Queue | None = None
        self._admitting: set[asyncio.Task] = set()  # replacements of dead actors, until they are up
        self._lost: str | None = None  # why Ray can no longer be used, once it cannot
        self._head_lost = False  # ...because its head stopped answering
        self._head = ray.get_runtime_context().gcs_address  # where it is, for the line that says it was lost
        self._gone = asyncio.Event()  # set with `_lost`: calls still waiting for a result give up

    @property
    def size(self) -> int:
        """The number of actors asked for (a dead one's replacement takes its place)."""
        return self._size

    def _spawn(self):
        name = f"evaluator:{self.campaign}#{next(_ACTOR_NUMBERS)}"  # unique: one job may hold many pools
        worker = EvaluationWorker.options(num_cpus=self.worker_cpus, name=name)
        return worker.remote(self.problem, self.sandbox, self.run_seed)

    def _queue(self) -> asyncio.Queue:
        if self._idle is None:  # created lazily so it binds to the running event loop
            self._idle = asyncio.Queue()
            for actor in self._actors:
                self._idle.put_nowait(actor)
        return self._idle

    def _not_up(self) -> ConfigError:
        return ConfigError(f"{self.size} evaluation workers were not up within ray.ready_timeout="
                           f"{self.ready_timeout:g} s (the cluster has {ray.cluster_resources().get('CPU', 0):g} "
                           "CPUs free for them now); lower ray.num_workers or raise ray.ready_timeout")

    async def ready(self) -> None:
        """Wait until every worker is up; raise ConfigError with a worker's reason when one is not."""
        try:
            reasons = await asyncio.wait_for(asyncio.gather(*(actor.ready.remote() for actor in self._actors)),
                                             self.ready_timeout)
        except TimeoutError:
            raise self._not_up() from None
        ray_task_ended()
        _raise_first(reasons)

    def wait_ready(self) -> None:
        """`ready`, blocking: for a thread that starts the pool in the background."""
        try:
            reasons = ray.get([actor.ready.remote() for actor in self._actors], timeout=self.ready_timeout)
        except GetTimeoutError:
            raise self._not_up() from None
        ray_task_ended()
        _raise_first(reasons)

    async def layers(self) -> dict[str, str]:
        """The sandbox protection report of one worker."""
        actor = await self._queue().get()
        try:
            return await actor.layers.remote()
        except RayTaskError as exc:  # the sandbox cannot even start a session: one line, not Ray's traceback
            raise ConfigError(f"sandbox={self.sandbox.kind} does not work on this machine: "
                              f"{type(exc.cause).__name__}: {exc.cause}; see `evolve doctor`") from None
        finally:
            ray_task_ended()
            self._queue().put_nowait(actor)

    async def _call(self, method: str, code: str) -> Any:
        """Run `method(code)` on the next idle actor; a dead actor is replaced and WorkerDied raised."""
        queue = self._queue()
        actor = await queue.get()
        if actor is None:  # Ray is lost, or the last worker died and none could replace it: wake the next caller too
            queue.put_nowait(None)
            raise RayLost(self._lost or "every evaluation worker is gone and none could be placed again")
        try:
            call = getattr(actor, method).options(name=f"{method}:{self.campaign}")
            result = await self._unless_lost(call.remote(code))
        except RayActorError as exc:
            reason = " ".join(str(exc).split())[:300]
            self._actors = [a for a in self._actors if a is not actor]
            if self._lost is None and not await asyncio.to_thread(_head_answers):  # nothing could be placed again
                _log.info("an evaluation worker was lost: %s", reason, extra={"file_only": True})
                self._give_up(f"Ray's head stopped answering ({self._head}) when an evaluation worker was lost",
                              head=True)
            if self._lost is not None:
                raise RayLost(self._lost) from None
            _log.warning("an evaluation worker died (%s); starting a new one", reason)
            with contextlib.suppress(Exception):  # "unavailable" may be a live actor cut off: free its CPU
                ray.kill(actor)
            self._replace()
            raise WorkerDied(reason) from None
        except RayTaskError:
            queue.put_nowait(actor)
            raise
        except RayError as exc:  # Ray's own fault (a timeout, a lost object, its system): not the candidate's
            self._give_up(f"Ray failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
            raise RayLost(self._lost) from None
        except BaseException:
            queue.put_nowait(actor)
            raise
        finally:
            ray_task_ended()
        queue.put_nowait(actor)
        return result

    def _give_up(self, reason: str, head: bool = False) -> None:
        """Ray can no longer be used (`head`: its head stopped answering): every call from now on, and every one
        waiting for a worker or a result, raises `RayLost`."""
        if self._lost is None:
            self._lost = reason
            self._head_lost = head
            self._gone.set()
            for task in list(self._admitting):  # no replacement is wanted any more
                task.cancel()
            self._queue().put_nowait(None)

    async def _unless_lost(self, ref: Any) -> Any:
        """Await `ref`'s result; `RayLost` once Ray is given up meanwhile (a lost head may never answer)."""
        result, gone = asyncio.ensure_future(ref), asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait((result, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not result.done():
                result.cancel()
        if result.cancelled():
            raise RayLost(self._lost or "Ray was lost")
        return result.result()

    def _replace(self) -> None:
        """Start an actor in a dead one's place; it joins the idle ones once it is up."""
        actor = self._spawn()
        self._actors.append(actor)
        task = asyncio.ensure_future(self._admit(actor))
        self._admitting.add(task)
        task.add_done_callback(self._admitting.discard)

    async def _admit(self, actor) -> None:
        """Queue a replacement once it is up; give it up when Ray cannot place it within ready_timeout
        (its node is gone and no other has room) or it cannot build its evaluator."""
        try:
            reason = await asyncio.wait_for(actor.ready.remote(), self.ready_timeout)
        except TimeoutError:
            reason = (f"it was not placed within ray.ready_timeout={self.ready_timeout:g} s (the cluster has "
                      f"{ray.cluster_resources().get('CPU', 0):g} CPUs now)")
        except RayActorError as exc:
            reason = " ".join(str(exc).split())[:300]
        if reason is None:
            self._queue().put_nowait(actor)
            return
        with contextlib.suppress(Exception):
            ray.kill(actor)
        self._actors = [a for a in self._actors if a is not actor]
        _log.warning("a replacement evaluation worker was given up: %s; going on with %d", reason, len(self._actors))
        if not self._actors:
            self._give_up(f"every evaluation worker is gone and none could be placed again ({reason})")

    async def evaluate(self, code: str) -> EvaluationResult:
        """Evaluate `code` on the next idle worker; an evaluator's traceback goes to the log file only.

        An evaluation lost with its worker (a node that went down, a killed process) is not the candidate's
        fault: it is retried on another worker, at most `_ATTEMPTS` times in all, so that a candidate that
        kills every worker it reaches ends as invalid instead of looping.
        """
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                data = await self._call("evaluate", code)
            except RayTaskError as exc:  # trusted evaluator code raised outside the cascade's guard
                return evaluator_raised(exc.cause, str(exc))
            except WorkerDied as exc:
                died = exc
                if attempt < _ATTEMPTS:
                    _log.warning("an evaluation was lost with its worker; retrying it on another (attempt %d of %d)",
                                 attempt + 1, _ATTEMPTS)
                continue
            return result_from_data(data)
        return EvaluationResult(valid=False, score=None, feedback=(
            f"the evaluation worker died on each of {_ATTEMPTS} attempts (last: {died}); not retried again"))

    async def validate(self, code: str) -> EvaluationResult | None:
        """Score `code` on the validation data (None: the problem has none, or scoring failed)."""
        try:
            data = await self._call("validate", code)
        except RayTaskError as exc:  # the evaluator's validate raised: one line here, the traceback in the log
            validation_failed(exc.cause, str(exc))
            return None
        except WorkerDied as exc:
            _log.error("validation failed: %s", exc)
            return None
        return EvaluationResult.from_dict(data) if data is not None else None

    def shutdown(self) -> None:
        """Kill every actor; once Ray's head stopped answering, disconnect this process from Ray instead."""
        for task in list(self._admitting):
            task.cancel()
        actors, self._actors = self._actors, []
        if self._head_lost:
            _disconnect()
            return
        for actor in actors:
            with contextlib.suppress(Exception) if self._lost is not None else contextlib.nullcontext():
                ray.kill(actor)
