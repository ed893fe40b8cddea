"""The Docker backend with the interpreter inside the image (`sandbox.interpreter: image`): built locally
from this machine's files, it runs candidates with nothing of the host bound in but the sandbox's own code
and its control socket, so a node needs no interpreter at the controller's paths."""

from __future__ import annotations

import os
import sys

import pytest

from evaluators import evaluate_program
from evolve.config import SandboxConfig
from evolve.evaluation.sandboxing import make_sandbox
from evolve.problems import read_initial_program
from evolve.testing.attacks import HONEST, ContractEvaluator
from sandboxes import SandboxLimits, SandboxUnavailable
from sandboxes.docker import DockerSandbox, build_image
from sandboxes.image import LABEL_PACKAGES, LABEL_PYTHON
from tests.sandbox.docker_engine import docker_sandbox

IMAGE = "evolve-sandbox:test-python"
PROBE = """import os, sys, numpy
def solve(host_path):
    return {"python": sys.executable, "numpy": float(numpy.linalg.det(numpy.eye(3))),
            "sees_host_path": os.path.exists(host_path)}
"""


@pytest.fixture(scope="module")
def client():
    sandbox = docker_sandbox()  # an engine, or a skip (a failure under CI) saying why there is none
    client = sandbox._docker()
    build_image(IMAGE, client, packages=["numpy"])
    yield client
    client.images.remove(IMAGE, force=True)


def test_the_image_holds_the_interpreter_and_says_so(client):
    labels = client.images.get(IMAGE).labels
    assert labels[LABEL_PYTHON] == os.path.realpath(sys.executable)
    assert "numpy" in labels[LABEL_PACKAGES] and "pyseccomp" in labels[LABEL_PACKAGES]


def test_candidates_run_on_the_image_interpreter_with_no_host_paths_bound(client):
    sandbox = DockerSandbox(image=IMAGE, interpreter="image", packages=("numpy",), allow=[], client=client)
    try:
        assert evaluate_program(ContractEvaluator(), sandbox, HONEST, SandboxLimits()).score == 1.0
        with sandbox.session(PROBE, SandboxLimits()) as session:
            seen = session.call("solve", os.path.dirname(os.path.abspath(__file__)))  # this checkout
        mounts = {m["Destination"] for m in sandbox._container.attrs["Mounts"]}
        layers = sandbox.layers()
    finally:
        sandbox.close()
    assert mounts == {"/evolve-sandbox", "/evolve-control"}  # no interpreter, library or package from the host
    assert seen["python"] == os.path.realpath(sys.executable) and seen["numpy"] == 1.0
    assert seen["sees_host_path"] is False
    assert layers["filesystem"].startswith("the container's read-only root (the image's own interpreter and packages")
    assert "NOT" not in layers["seccomp"] and "NOT" not in layers["landlock"]
    assert int(layers["user"].split()[2].rstrip(";")) >= 1 << 20


def test_a_problem_runs_through_the_config_option(client, circle_problem):
    config = SandboxConfig(kind="docker", image=IMAGE, interpreter="image")
    sandbox = make_sandbox(config, circle_problem)
    try:
        from evolve.problems import load_evaluator

        result = evaluate_program(load_evaluator(circle_problem), sandbox, read_initial_program(circle_problem),
                                  circle_problem.limits)
    finally:
        sandbox.close()
    assert result.valid and result.score > 0, result.feedback


def test_an_image_without_an_interpreter_or_a_package_says_how_to_build_one(client):
    empty = docker_sandbox()  # the default image: empty, the host's interpreter bound in
    empty.close()
    for sandbox, match in ((DockerSandbox(image=empty.image, interpreter="image", client=client),
                            "holds no interpreter.*evolve sandbox build --interpreter"),
                           (DockerSandbox(image=IMAGE, interpreter="image", packages=("numpy", "pytest"),
                                          client=client),
                            "lacks the packages pytest.*--packages numpy pyseccomp pytest")):
        with pytest.raises(SandboxUnavailable, match=match), sandbox.session(HONEST, SandboxLimits()):
            pass
        sandbox.close()
