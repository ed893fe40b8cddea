"""The attack suite (`evolve.testing.SandboxContract`) against every built-in sandbox backend.

For each attack: no score it did not earn, the worker survives, nothing outside the scratch dir
changes, no secret leaks, no process outlives the evaluation, and the next evaluation is unaffected.
"""

from __future__ import annotations

from evolve.config import SandboxConfig
from evolve.evaluation.sandboxing import make_sandbox
from evolve.testing import SandboxContract
from evolve.testing.attacks import ATTACKS
from tests.sandbox.docker_engine import docker_sandbox


class TestProcess(SandboxContract):
    def make_sandbox(self):
        return make_sandbox(SandboxConfig())


class TestDocker(SandboxContract):
    def make_sandbox(self):
        return docker_sandbox("host")


class TestDockerImage(SandboxContract):  # sandbox.interpreter=image
    def make_sandbox(self):
        return docker_sandbox("image")


def test_the_suite_covers_every_category_in_the_notes():
    categories = {a.category.split(" (")[0] for a in ATTACKS}
    required = {"endless loop", "endless sleep", "memory bomb", "fork bomb", "thread bomb", "disk bomb", "network",
                "reading API keys from the environment", "reading other processes' /proc/*/environ",
                "writing outside its directory", "finding hidden answer files", "signalling the parent",
                "ptracing the parent", "huge stdout", "NaN/inf results", "objects with lying __eq__/__float__",
                "patching time, builtins or the evaluator", "sys.exit/os._exit before the work",
                "forging result lines or files", "pickle payloads in results", "ctypes segfaults",
                "daemons that outlive the run", "ignoring SIGALRM/SIGTERM", "poisoning the next run",
                "import-time side effects", "oversized results"}
    assert required <= categories and len(ATTACKS) >= 25
