"""Structured edits: the schema of a parent's edits, JSON replies turned into edits, and the fake server,
the model and the pre-flight probe handling `response_format` through the real openai client."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import jsonschema
import pytest

from evolve.config import LLMConfig, ModelConfig
from evolve.errors import ConfigError, EditError
from evolve.program import Program, ProgramStatus
from evolve.proposals.edits import BLOCK_END, BLOCK_START, apply_proposal, is_structured
from evolve.proposals.llm import OpenAIModel
from evolve.proposals.llm.base import Prompt
from evolve.proposals.llm.probe import resolve_edit_formats, takes_schema
from evolve.proposals.scratchpad import explanation
from evolve.proposals.structured import MAX_EDITS, edit_schema, response_format
from evolve.testing import FakeOpenAIServer, ProposerContract
from evolve.testing.fake_openai import STRUCTURED, conforming

CODE = f"""import math

def helper(x):
    return x + 1

{BLOCK_START}
def solve(n):
    total = 0
    for i in range(n):
        total += i

    return helper(total)
{BLOCK_END}

def other():
    return helper(0)

{BLOCK_START}
SCALE = 2.0
{BLOCK_END}
"""
INITIAL = Path(__file__).parents[2] / "problems" / "circle_packing" / "initial.py"


def _reply(*edits: dict) -> str:
    return json.dumps({"edits": [{**edit, "rationale": "because"} for edit in edits]})


def _edit(first: str, replacement: str, last: str | None = None, block: int = 1) -> dict:
    return {"block": block, "first_line": first, "last_line": last or first, "replacement": replacement}


# --- the schema -------------------------------------------------------------------------------------


def test_the_schema_names_each_block_and_only_its_lines_that_occur_once():
    schema = edit_schema(CODE)
    jsonschema.Draft202012Validator.check_schema(schema)
    edits = schema["properties"]["edits"]
    assert (edits["minItems"], edits["maxItems"]) == (1, MAX_EDITS)
    assert edit_schema(CODE, max_edits=1)["properties"]["edits"]["maxItems"] == 1
    first, second = edits["items"]["anyOf"]
    assert first["properties"]["block"]["enum"] == [1] and second["properties"]["block"]["enum"] == [2]
    lines = first["properties"]["first_line"]["enum"]
    assert lines == ["def solve(n):", "total = 0", "for i in range(n):", "total += i", "return helper(total)"]
    assert first["properties"]["last_line"]["enum"] == lines
    assert second["properties"]["first_line"]["enum"] == ["SCALE = 2.0"]
    # the code outside the blocks can never be named
    assert "def helper(x):" not in json.dumps(schema) and "return helper(0)" not in json.dumps(schema)
    assert all(item["additionalProperties"] is False and set(item["required"]) == set(item["properties"])
               for item in (first, second))  # as OpenAI's strict mode requires


def test_a_repeated_line_or_one_with_quotes_is_no_anchor_and_a_block_without_one_is_left_out():
    # (llama-cpp-python's schema-to-grammar converter mis-escapes quotes and backslashes in an enum)
    code = (f"{BLOCK_START}\nx = 1\nx = 1\ny = 2\ns = 'a'\nt = \"b\"\nu = r'\\\\'\n{BLOCK_END}\n"
            f"{BLOCK_START}\n\n{BLOCK_END}\n")
    schema = edit_schema(code)
    assert schema["properties"]["edits"]["items"]["properties"]["first_line"]["enum"] == ["y = 2", "s = 'a'"]
    assert edit_schema(f"{BLOCK_START}\n\n{BLOCK_END}\n") is None


def test_a_conforming_reply_to_the_schema_of_a_real_program_applies_or_fails_with_a_reason():
    code = INITIAL.read_text()
    schema = edit_schema(code)
    reply = conforming(schema)  # the first line, replaced by nothing
    jsonschema.validate(reply, schema)
    child = apply_proposal(code, json.dumps(reply))
    assert child != code and child.count("\n") == code.count("\n") - 1


# --- replies into edits ------------------------------------------------------------------------------


def test_one_line_is_replaced_and_reindented_where_it_stood():
    child = apply_proposal(CODE, _reply(_edit("total = 0", "total = 10")))
    assert "    total = 10\n    for i" in child
    # written with the wrong indentation, or with a stray CRLF, it still stands where the old line stood
    assert apply_proposal(CODE, _reply(_edit("total = 0", "            total = 10\r\n"))) == child


def test_a_span_of_lines_keeps_its_inner_indentation():
    new = "for i in range(n):\n    total += 2 * i"
    child = apply_proposal(CODE, _reply(_edit("for i in range(n):", new, last="total += i")))
    assert "    for i in range(n):\n        total += 2 * i\n\n    return helper(total)" in child


def test_anchors_given_in_the_wrong_order_name_the_same_span():
    forward = apply_proposal(CODE, _reply(_edit("total = 0", "total = 5", last="total += i")))
    backward = apply_proposal(CODE, _reply(_edit("total += i", "total = 5", last="total = 0")))
    assert forward == backward and "for i" not in forward


def test_an_empty_replacement_deletes_the_lines_and_a_second_block_can_change():
    child = apply_proposal(CODE, _reply(_edit("total += i", ""), _edit("SCALE = 2.0", "SCALE = 3.0", block=2)))
    assert "total += i" not in child and "SCALE = 3.0" in child


def test_an_anchor_also_found_outside_the_block_is_widened_until_it_is_unique():
    code = f"def f():\n    return 1\n\n{BLOCK_START}\ndef g():\n    return 1\n{BLOCK_END}\n"
    child = apply_proposal(code, _reply(_edit("return 1", "return 2")))
    assert child == code.replace("def g():\n    return 1", "def g():\n    return 2")


def test_a_json_fence_and_a_reply_cut_off_in_its_rationale_still_apply():
    reply = _reply(_edit("total = 0", "total = 1"))
    fenced = f"```json\n{reply}\n```"
    assert is_structured(fenced) and apply_proposal(CODE, fenced) == apply_proposal(CODE, reply)
    cut = reply[:reply.index('"rationale": "') + len('"rationale": "bec')]
    assert apply_proposal(CODE, cut) == apply_proposal(CODE, reply)


@pytest.mark.parametrize(("reply", "reason"), [
    (_reply(_edit("total = 1", "x")), r"first_line 'total = 1' is not a line of EVOLVE-BLOCK 1"),
    (_reply(_edit("", "x")), "is not a line of EVOLVE-BLOCK 1"),
    (_reply(_edit("def helper(x):", "x")), "is not a line of EVOLVE-BLOCK 1"),
    (_reply(_edit("SCALE = 2.0", "x", block=1)), "is not a line of EVOLVE-BLOCK 1"),
    (_reply(_edit("total = 0", "x", block=3)), "block=3, but the program has 2 EVOLVE-BLOCKs"),
    (_reply({**_edit("total = 0", "x"), "block": True}), "`block` is True"),
    (_reply({**_edit("total = 0", "x"), "block": "1"}), "`block` is '1'; give it as a JSON integer"),
    (_reply({"block": 1, "first_line": "total = 0", "replacement": "x"}), "`last_line` is missing"),
    (_reply({**_edit("total = 0", "x"), "replacement": ["x"]}), "`replacement` is"),
    (_reply(_edit("total = 0", "total = 0")), "leaves the program unchanged"),
    (_reply(_edit("total = 0", "total = 1"), _edit("total = 0", "total = 2")), "already changed"),
    (json.dumps({"edits": []}), "no `edits` list"),
    (json.dumps({"edit": {}}), "no `edits` list"),
    (json.dumps({"edits": ["total = 0"]}), "is not an object"),
    ('{"edits": [{"block": 1, "first_line": "total = 0", "last_line": "total = 0", "replacement": "total',
     "does not parse"),
    ("{not json at all", "does not parse"),
])
def test_a_reply_that_cannot_apply_is_an_edit_failure_with_its_reason(reply, reason):
    with pytest.raises(EditError, match=reason):
        apply_proposal(CODE, reply)


def test_a_list_is_not_a_structured_reply():
    with pytest.raises(EditError):
        apply_proposal(CODE, "[1, 2]")


def test_hostile_replacements_cannot_reach_the_code_outside_the_blocks():
    escape = f"SCALE = 2.0\n{BLOCK_END}\nimport os\nos.system('x')\n{BLOCK_START}"
    with pytest.raises(EditError, match="outside the EVOLVE-BLOCKs"):
        apply_proposal(CODE, _reply(_edit("SCALE = 2.0", escape, block=2)))
    with pytest.raises(EditError, match="is not a line of EVOLVE-BLOCK 2"):
        apply_proposal(CODE, _reply(_edit(BLOCK_END, "", block=2)))
    huge = _reply(_edit("SCALE = 2.0", "SCALE = 3.0", block=2)).replace('"because"', json.dumps("x" * 100_000))
    assert "SCALE = 3.0" in apply_proposal(CODE, huge)


# --- the fake server, the model and the probe --------------------------------------------------------

PARENT = Program(id=1, iteration=0, status=ProgramStatus.VALID, code=CODE, code_hash="h", score=1.0)
PROMPT = Prompt([{"role": "user", "content": "improve"}], PARENT)


def _model(server, edit_format="structured"):
    return OpenAIModel(ModelConfig(model="m", base_url=server.base_url, api_key_env=None, max_retries=0,
                                   timeout=10.0, edit_format=edit_format))


async def _twice(model):
    try:
        return [await model.propose(PROMPT) for _ in range(2)]
    finally:
        await model.close()


def _once(model):
    return asyncio.run(_twice(model))[0]


def test_the_fake_server_keeps_a_conforming_reply_and_replaces_one_that_does_not_conform():
    good = _reply(_edit("total = 0", "total = 1"))
    with FakeOpenAIServer(lambda request: good, schema_shapes=STRUCTURED) as server:
        proposal = _once(_model(server))
    assert proposal.text == good
    shape = server.requests[0]["response_format"]
    assert shape["type"] == "json_schema" and shape["json_schema"]["schema"] == edit_schema(CODE)
    with FakeOpenAIServer(lambda request: "Sure! Here is my edit: <<<<<<< SEARCH ...",
                          schema_shapes=STRUCTURED) as server:
        proposal = _once(_model(server))
    jsonschema.validate(json.loads(proposal.text), edit_schema(CODE))
    assert apply_proposal(CODE, proposal.text) != CODE


def test_llama_cpp_pythons_shape_is_tried_when_openais_is_refused(caplog):
    with FakeOpenAIServer(lambda request: "x", schema_shapes=("json_object",)) as server:
        model = _model(server)
        with caplog.at_level(logging.WARNING):
            asyncio.run(_twice(model))
    assert [r["response_format"]["type"] for r in server.refused] == ["json_schema"]  # once: remembered
    assert [r["response_format"]["type"] for r in server.requests] == ["json_object", "json_object"]
    assert server.requests[0]["response_format"]["schema"] == edit_schema(CODE)
    assert model.edit_format == "structured" and not [r for r in caplog.records if r.name.startswith("evolve")]


def test_an_endpoint_that_refuses_schemas_falls_back_to_text_once_says_so_and_remembers(caplog):
    with FakeOpenAIServer(lambda request: "plain text", schema_shapes=()) as server:
        model = _model(server)
        with caplog.at_level(logging.WARNING):
            first, second = asyncio.run(_twice(model))
    assert first.text == second.text == "plain text"  # the proposal is not lost
    assert len(server.refused) == 2 and all("response_format" not in r for r in server.requests)
    assert model.edit_format == "auto"
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("evolve")]
    assert len(warnings) == 1 and "rejects a JSON schema in response_format (HTTP 400" in warnings[0]
    assert "\n" not in warnings[0]


def test_text_formats_send_no_schema_and_a_wrong_format_is_one_line():
    with FakeOpenAIServer(lambda request: "x", schema_shapes=STRUCTURED) as server:
        for edit_format in ("diff", "rewrite", "auto", None):
            model = _model(server, edit_format)
            _once(model)
            assert model.edit_format == (edit_format or "auto")
    assert all("response_format" not in r for r in server.requests)
    with pytest.raises(ConfigError, match=r"llm.edit_format='json' \(model m\): use auto, diff, rewrite or structured"):
        _model(server, "json")


def test_auto_probes_whether_the_endpoint_honours_a_schema():
    with FakeOpenAIServer(lambda request: "no JSON here", schema_shapes=STRUCTURED) as honours, \
            FakeOpenAIServer(lambda request: "x", schema_shapes=("json_object",)) as llama_cpp_python, \
            FakeOpenAIServer(lambda request: "x", schema_shapes=()) as refuses:
        assert takes_schema(ModelConfig(model="m", base_url=honours.base_url)) == ("json_schema", "a conforming answer")
        assert takes_schema(ModelConfig(model="m", base_url=llama_cpp_python.base_url))[0] == "json_object"
        assert takes_schema(ModelConfig(model="m", base_url=refuses.base_url)) == (None, "HTTP 400")
        models = [ModelConfig(model="m", name="a", base_url=honours.base_url),
                  ModelConfig(model="m", name="b", base_url=refuses.base_url),
                  ModelConfig(model="m", name="c", base_url=refuses.base_url, edit_format="rewrite")]
        resolved = resolve_edit_formats(LLMConfig(kind="ensemble", models=models))
        assert [m.edit_format for m in resolved.model_configs()] == ["structured", "auto", "rewrite"]
        one = resolve_edit_formats(LLMConfig(kind="openai", model="m", base_url=honours.base_url))
        assert one.edit_format == "structured"
        assert resolve_edit_formats(LLMConfig(kind="openai", model="m", base_url=honours.base_url,
                                              probe_timeout=None)).edit_format == "auto"
    assert len(refuses.requests) == len(refuses.refused) == 0 and len(refuses.probes) == 4  # both shapes, twice
    assert len(honours.requests) == 0 and len(honours.probes) == 3  # never shown to the responder


def test_response_format_shapes():
    schema = {"type": "object"}
    assert response_format("json_schema", schema) == {
        "type": "json_schema", "json_schema": {"name": "edits", "strict": True, "schema": schema}}
    assert response_format("json_object", schema) == {"type": "json_object", "schema": schema}


class TestStructuredOpenAIModel(ProposerContract):
    """A structured model keeps the proposer contract: the server's decoding can only write edits that apply."""

    @classmethod
    def setup_class(cls):
        cls.server = FakeOpenAIServer(lambda request: "prose the schema does not allow", schema_shapes=STRUCTURED)
        cls.server.start()

    @classmethod
    def teardown_class(cls):
        cls.server.stop()

    def make_proposer(self, seed):
        return OpenAIModel(ModelConfig(model="fake-model", base_url=self.server.base_url, api_key_env=None,
                                       max_retries=0, timeout=30.0, edit_format="structured"))


def test_the_scratchpad_notes_a_structured_replys_rationales():
    reply = json.dumps({"edits": [{**_edit("total = 0", "total = 1"), "rationale": "start higher"},
                                  {**_edit("SCALE = 2.0", "SCALE = 3.0", block=2), "rationale": "scale up"}]})
    assert explanation(reply) == "start higher; scale up"
    assert explanation('{"edits": 3}') == "" and explanation("{broken") == ""


def test_raw_newlines_in_a_string_are_read_as_llama_cpps_grammar_lets_them_through():
    reply = _reply(_edit("for i in range(n):", "for i in range(n):\n    total += 2 * i", last="total += i"))
    raw = reply.replace("\\n", "\n")
    assert "\n" in raw and apply_proposal(CODE, raw) == apply_proposal(CODE, reply)
