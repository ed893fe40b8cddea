"""A third-party distribution written into a folder, found by `importlib.metadata` once the folder is on
sys.path (no pip install): a proposer in `evolve.proposers` and a sandbox backend in `evolve.sandboxes`."""

from __future__ import annotations

import uuid
from pathlib import Path

PROPOSER = '''
import re

from evolve.errors import ProposerError
from evolve.proposals.llm.base import Proposal, Proposer


class Steps(Proposer):
    """Raises the optimiser's step count of circle_packing's `refine` by a seeded amount."""

    name = "steps"

    def __init__(self, config, seed):
        self.config, self.seed = config, seed

    async def propose(self, prompt):
        code = prompt.parent.code
        found = re.search(r"^def refine\\(centers, steps=(\\d+)", code, re.M)
        if found is None:
            raise ProposerError(f"{self.name}: no steps= to change", self.name)
        line = code[found.start():code.index("\\n", found.start())]
        more = line.replace(f"steps={found[1]}", f"steps={int(found[1]) + 10 + prompt.iteration % 7}", 1)
        return Proposal(text=f"<<<<<<< SEARCH\\n{line}\\n=======\\n{more}\\n>>>>>>> REPLACE\\n", model=self.name)
'''

SANDBOX = '''
from sandboxes import Sandbox
from sandboxes.process import ProcessSandbox


class Recorded(Sandbox):
    """The process backend under another name, keeping what evolve built it with."""

    def __init__(self, config, allow):
        self.config, self.allow = config, allow
        self.inner = ProcessSandbox(user=config.user, network_isolation=config.network_isolation,
                                    preload=tuple(config.preload), allow=allow)

    def session(self, source, limits):
        return self.inner.session(source, limits)

    def layers(self):
        return {**self.inner.layers(), "plugin": "recorded: the process backend under another name"}

    def warm(self):
        self.inner.warm()

    def close(self):
        self.inner.close()
'''


def write_plugin_dist(folder: Path) -> str:
    """Write the package and its `.dist-info` into `folder`; return the package's (unique) name."""
    name = f"evolve_plugin_{uuid.uuid4().hex[:8]}"
    package = folder / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "proposer.py").write_text(PROPOSER)
    (package / "sandbox.py").write_text(SANDBOX)
    meta = folder / f"{name}-0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text(f"[evolve.proposers]\nsteps = {name}.proposer:Steps\n\n"
                                           f"[evolve.sandboxes]\nrecorded = {name}.sandbox:Recorded\n")
    return name
