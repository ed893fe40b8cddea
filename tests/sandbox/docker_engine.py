"""The Docker backend for tests: a real engine or, outside CI, a skip that says why."""

from __future__ import annotations

import os

import pytest

from evolve.testing.docker_engine import EngineUnavailable
from evolve.testing.docker_engine import docker_image_sandbox as _docker_image_sandbox
from evolve.testing.docker_engine import docker_sandbox as _docker_sandbox


def docker_sandbox(interpreter: str = "host"):
    """The local engine's DockerSandbox (`interpreter="image"`: the interpreter inside its image); CI fails
    without an engine, other machines skip."""
    try:
        return _docker_sandbox() if interpreter == "host" else _docker_image_sandbox()
    except EngineUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Docker backend, but no engine answers ({exc}); .ci/run starts dockerd")
        pytest.skip(f"no Docker engine on this machine ({exc}); scripts/test.sh starts one when run as root")
