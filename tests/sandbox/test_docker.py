"""What is particular to the Docker backend: one warm container per sandbox, its layers, bad images."""

from __future__ import annotations

import pytest

from evaluators import evaluate_program
from evolve.testing.attacks import HONEST, ContractEvaluator
from sandboxes import SandboxLimits, SandboxUnavailable
from sandboxes.docker import DockerSandbox
from tests.sandbox.docker_engine import docker_sandbox


@pytest.fixture(scope="module")
def sandbox():
    sb = docker_sandbox()
    yield sb
    sb.close()


def test_one_warm_container_serves_every_evaluation(sandbox):
    results = [evaluate_program(ContractEvaluator(), sandbox, HONEST, SandboxLimits()) for _ in range(10)]
    assert all(r.valid and r.score == 1.0 for r in results)
    container = sandbox._container
    running = sandbox._docker().containers.list(filters={"label": "evolve=sandbox"})
    assert container is not None and [c.id for c in running if c.id == container.id] == [container.id]
    evaluate_program(ContractEvaluator(), sandbox, HONEST, SandboxLimits())
    assert sandbox._container.id == container.id  # never one `docker run` per candidate


def test_the_layers_say_what_the_container_provides(sandbox):
    layers = sandbox.layers()
    assert layers["network"] == "isolated: new empty network namespace" and "--network none" in layers["container"]
    assert "read-only root" in layers["filesystem"] and "no-new-privileges" in layers["container"]
    assert "fresh /dev/shm, /dev/mqueue" in layers["filesystem"] and "IPC" in layers["namespaces"]
    assert int(layers["user"].split()[2].rstrip(";")) >= 1 << 20


def test_a_missing_image_says_how_to_build_it(sandbox):
    other = DockerSandbox(image="evolve-sandbox:does-not-exist", client=sandbox._docker())
    with pytest.raises(SandboxUnavailable, match="evolve sandbox build"):
        with other.session(HONEST, SandboxLimits()):
            pass


def test_a_container_killed_from_outside_is_started_anew():
    sandbox = docker_sandbox()
    try:
        assert evaluate_program(ContractEvaluator(), sandbox, HONEST, SandboxLimits()).valid
        first = sandbox._container.id
        sandbox._container.kill()
        again = evaluate_program(ContractEvaluator(), sandbox, HONEST, SandboxLimits())
        assert again.valid, again.feedback
        assert sandbox._container.id != first
    finally:
        sandbox.close()
