"""A Docker sandbox on the local engine for tests and benchmarks, building the default image if needed."""

from __future__ import annotations

__all__ = ["EngineUnavailable", "docker_sandbox"]


class EngineUnavailable(RuntimeError):
    """No Docker engine answers on this machine (`bash scripts/docker.sh` starts one as root)."""


def docker_sandbox():
    """A DockerSandbox on the local engine, building the default image when it is missing."""
    import docker

    from sandboxes.docker import DEFAULT_IMAGE, DockerSandbox, build_image

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(str(exc)) from None
    try:
        client.images.get(DEFAULT_IMAGE)
    except docker.errors.ImageNotFound:
        build_image(DEFAULT_IMAGE, client)
    return DockerSandbox(client=client)
