"""The pool base class: its docstring's example runs, its hooks are no-ops, and a part that does not
subclass its base class is refused in one line."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from evolve.config import Config
from evolve.engine.parts import assemble
from evolve.errors import ConfigError
from evolve.evaluation.pool import Pool


def test_the_docstring_example_is_a_complete_pool():
    example = Pool.__doc__.split("Example (")[1].split("::\n", 1)[1].split("\n    Hand one in")[0]
    namespace: dict = {}
    exec(textwrap.dedent(example), namespace)
    pool = namespace["LengthPool"]()
    assert isinstance(pool, Pool) and pool.size == 1

    async def use():
        await pool.ready()
        pool.watch(lambda: None)
        pool.begin()
        return await pool.layers(), await pool.evaluate("x = 1\n"), await pool.validate("x = 1\n")

    layers, result, validation = asyncio.run(use())
    assert layers == {} and result.valid and result.score == -6.0 and validation is None
    pool.shutdown()


def test_a_pool_without_its_abstract_methods_cannot_be_built():
    class Half(Pool):
        async def evaluate(self, code):
            raise NotImplementedError

    with pytest.raises(TypeError, match="abstract"):
        Half()


@pytest.mark.parametrize("part, message", [
    ("pool", r"^pool=Duck: not an evaluation pool; subclass evolve.evaluation.pool.Pool$"),
    ("proposer", r"^proposer=Duck: not a proposer; subclass evolve.proposals.llm.Proposer"),
])
def test_a_handed_in_part_must_subclass_its_base_class(circle_problem, tmp_path, part, message):
    class Duck:
        size = 1
        name = "duck"

    with pytest.raises(ConfigError, match=message):
        assemble(Config(problem=circle_problem), tmp_path, **{part: Duck()})
    assert not (tmp_path / "programs.db").exists()  # refused before anything was opened
