"""What the Ray dashboard shows of a campaign: its job's metadata, where the dashboard is, how to get in.

A campaign is one Ray job (one driver): its metadata carries `job_name` (the column the dashboard's job
list shows), the problem, the run dir and the composed config. `RayInfo` is what `evolve.evaluation.ray_pool.connect`
found: the dashboard's real address (a second local instance moves to 8266, 8267...), the session dir
(where Ray writes the Prometheus scrape config) and the node's metrics export port.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RayInfo", "is_loopback", "job_metadata", "loopback_pinned", "token_path"]

_CONFIG_CHARS = 60_000  # the job's metadata travels with every task's job config: keep it bounded
_pin_lock = threading.Lock()


@dataclass(frozen=True)
class RayInfo:
    """The Ray instance a campaign runs on.

    Attributes:
        address: the GCS address (`host:port`), or the `ray://` address of a client connection.
        dashboard_url: `http://host:port` of the dashboard, or "" when it is off.
        local: a private instance this process started (it ends with the process).
        session_dir: the node's session dir (`metrics/prometheus/prometheus.yml` is under it when the
            dashboard runs), or "" when unknown (a client connection).
        metrics_export_port: where this node's agent serves Prometheus text (0 when unknown).
        node_ip: the node's IP address as Ray reports it.
    """

    address: str
    dashboard_url: str = ""
    local: bool = True
    session_dir: str = ""
    metrics_export_port: int = 0
    node_ip: str = ""

    @classmethod
    def from_address_info(cls, info: dict[str, Any], local: bool, dashboard_url: str = "") -> RayInfo:
        """Build from `ray.init(...).address_info` (or the connected node's)."""
        url = dashboard_url or info.get("webui_url") or ""
        if url and "://" not in url:
            url = f"http://{url}"
        return cls(address=str(info.get("gcs_address") or info.get("address") or ""), dashboard_url=url,
                   local=local, session_dir=str(info.get("session_dir") or ""),
                   metrics_export_port=int(info.get("metrics_export_port") or 0),
                   node_ip=str(info.get("node_ip_address") or ""))

    def describe(self) -> str:
        """One line for the terminal and campaign.log: where the dashboard is and how to get in."""
        where = "a private local Ray instance" if self.local else f"the Ray cluster at {self.address}"
        if not self.dashboard_url:
            turn_on = ("ray.include_dashboard=true, or keep one across campaigns with `ray start --head` and "
                       "ray.address=auto") if self.local else "start the cluster's head with the dashboard"
            return f"Ray: {where}; its dashboard is off ({turn_on})"
        if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
            auth = "no token: RAY_AUTH_MODE=disabled"
        else:
            auth = f"sign in with Ray's token: `ray get-auth-token`, or the file {token_path()}"
        ends = "; it ends with this campaign" if self.local else ""
        return f"Ray dashboard: {self.dashboard_url} ({where}; {auth}{ends})"


def token_path() -> Path:
    """Where Ray keeps its authentication token (`RAY_AUTH_TOKEN_PATH`, else ~/.ray/auth_token)."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")


def job_metadata(name: str, problem: str, run_dir: str | Path, config: Any = None) -> dict[str, str]:
    """The Ray job's metadata of a campaign: `job_name` (shown by the dashboard), problem, run dir, config."""
    metadata = {"job_name": name, "evolve.engine.campaign": name, "evolve.problem": problem,
                "evolve.run_dir": str(Path(run_dir).resolve())}
    if config is not None:
        try:
            from omegaconf import OmegaConf

            text = OmegaConf.to_yaml(OmegaConf.structured(config))
        except Exception as exc:  # noqa: BLE001 (an evaluator object YAML cannot hold: say so, start anyway)
            text = f"(not shown: {type(exc).__name__})"
        metadata["evolve.config"] = text[:_CONFIG_CHARS]
    return metadata


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 (or ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(address: str) -> str:
    address = address.split("://", 1)[-1]
    return address.rsplit(":", 1)[0].strip("[]") if ":" in address else address


def _target(address: str) -> str:
    """The host:port `address` stands for (`auto`: RAY_ADDRESS or the last `ray start`'s), or ""."""
    if address != "auto":
        return address
    try:
        from ray._private.services import get_ray_address_from_environment

        return get_ray_address_from_environment("auto", None) or ""
    except Exception:  # noqa: BLE001 (no cluster recorded: ray.init says so itself)
        return ""


@contextlib.contextmanager
def loopback_pinned(address: str) -> Iterator[bool]:
    """While `ray.init` runs, keep 127.0.0.1 as the node's IP for a local instance (or a loopback one).

    Why: on Linux Ray replaces a loopback `_node_ip_address` (and a loopback GCS host) with the address
    the machine routes outwards from (`services.resolve_ip_for_localhost`; here 192.0.2.2), unless
    `ray_constants.ENABLE_RAY_CLUSTER` is false, which is Ray's own single-node mode (its default on
    macOS and Windows). A private instance then binds its GCS to 127.0.0.1 only, and a driver joining
    it by a loopback address must resolve the same way. Yields whether it pinned.
    """
    from ray._private import ray_constants

    pin = address == "local" or is_loopback(_host(_target(address)))
    if not pin:
        yield False
        return
    with _pin_lock:
        before = ray_constants.ENABLE_RAY_CLUSTER
        ray_constants.ENABLE_RAY_CLUSTER = False
        try:
            yield True
        finally:
            ray_constants.ENABLE_RAY_CLUSTER = before
