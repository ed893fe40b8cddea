"""A Docker sandbox on the local engine for tests and benchmarks, building the default image if needed."""

from __future__ import annotations

__all__ = ["EngineUnavailable", "docker_image_sandbox", "docker_sandbox"]


class EngineUnavailable(RuntimeError):
    """No Docker engine answers on this machine (`bash scripts/docker.sh` starts one as root)."""


def _client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(str(exc)) from None
    return client


def docker_sandbox():
    """A DockerSandbox on the local engine, building the default image when it is missing."""
    import docker

    from sandboxes.docker import DEFAULT_IMAGE, DockerSandbox, build_image

    client = _client()
    try:
        client.images.get(DEFAULT_IMAGE)
    except docker.errors.ImageNotFound:
        build_image(DEFAULT_IMAGE, client)
    return DockerSandbox(client=client)


def docker_image_sandbox(packages: tuple[str, ...] = ("numpy",)):
    """A DockerSandbox running the interpreter inside its image (`sandbox.interpreter: image`), building
    `evolve-sandbox:python` when it is missing or was built from another interpreter or other packages."""
    import json
    import os
    import sys

    import docker

    from sandboxes.docker import PYTHON_IMAGE, DockerSandbox, build_image
    from sandboxes.image import LABEL_PACKAGES, LABEL_PYTHON

    client = _client()
    try:
        labels = client.images.get(PYTHON_IMAGE).labels or {}
    except docker.errors.ImageNotFound:
        labels = {}
    if labels.get(LABEL_PYTHON) != os.path.realpath(sys.executable) or \
            not set(packages) <= set(json.loads(labels.get(LABEL_PACKAGES, "[]"))):
        build_image(PYTHON_IMAGE, client, packages=packages)
    return DockerSandbox(image=PYTHON_IMAGE, interpreter="image", packages=packages, allow=[], client=client)
