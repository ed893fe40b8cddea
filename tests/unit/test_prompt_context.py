"""What a prompt carries: the edit format for its mode, inspirations' blocks with why and how they differ,
trimmed metrics, the lineage's attempts, the parent's cell, and token counts from the model's server."""

from __future__ import annotations

import asyncio

from evolve.config import ModelConfig, PromptConfig
from evolve.program import Program, ProgramStatus
from evolve.proposals.lineage import Attempt, Lineage
from evolve.proposals.llm.openai_model import OpenAIModel
from evolve.proposals.prompts import PromptBuilder, metric_filter
from evolve.proposals.tokens import TokenCounter, estimate_tokens
from evolve.storage.database import ProgramDatabase
from evolve.testing import FakeOpenAIServer
from evolve.testing.fake_openai import FakeReply

FIXED = "import math\n\nHEADER_CONSTANT = 'kept outside the block'\n\n"


def _code(body: str) -> str:
    return f"{FIXED}# EVOLVE-BLOCK-START\ndef solve():\n{body}# EVOLVE-BLOCK-END\n\nprint(solve())\n"


def _p(pid, score, body="    return 1\n", **kw):
    return Program(id=pid, iteration=pid, status=ProgramStatus.VALID, code=_code(body), code_hash=str(pid),
                   score=score, **kw)


def test_diff_mode_offers_no_rewrite_and_shows_one_worked_example():
    builder = PromptBuilder("d", "solve")
    for mode in ("diff", "crossover"):
        system = builder.build(_p(1, 1.0), [], [], mode=mode, second_parent=_p(2, 2.0)).messages[0]["content"]
        assert "An example reply" in system and system.count("<<<<<<< SEARCH") == 1 and ">>>>>>> REPLACE" in system
        assert "```python" not in system and "rewrite" not in system.lower(), mode
    full = builder.build(_p(1, 1.0), [], [], mode="full").messages[0]["content"]
    assert "one ```python fenced block" in full and "SEARCH" not in full


def test_inspirations_show_only_their_blocks_labelled_with_their_difference():
    parent = _p(1, -15.0, "    return 1\n")
    best = _p(2, -14.0, "    x = 2\n    return x\n")
    diverse = _p(3, -40.0, "    return 3\n")
    labels = {2: "best", 3: "diverse"}
    user = PromptBuilder("d", "solve").build(parent, [best, diverse], [], labels=labels).messages[1]["content"]
    assert user.count("HEADER_CONSTANT") == 1 and user.count("print(solve())") == 1  # the fixed code, once
    assert "x = 2" in user and "return 3" in user
    assert "Inspiration 1: one of this island's best (score -14, +1 against the current program; 3 lines differ)" \
        in user
    assert "Inspiration 2: a different approach, from another MAP-Elites cell (score -40, -25 against" in user


def test_an_inspiration_far_below_the_parent_is_shown_only_when_chosen_for_diversity():
    parent = _p(1, -15.0)
    weak, close = _p(2, -31.0, "    return 2\n"), _p(3, -16.0, "    return 3\n")
    builder = PromptBuilder("d", "solve")
    prompt = builder.build(parent, [weak, close], [], labels={2: "best", 3: "best"})
    assert prompt.inspirations == [close] and "return 2" not in prompt.messages[1]["content"]
    assert builder.build(parent, [weak, close], [], labels={2: "diverse"}).inspirations == [weak, close]
    roomy = PromptBuilder("d", "solve", PromptConfig(inspiration_slack=2.0))
    assert roomy.build(parent, [weak], [], labels={2: "migrant"}).inspirations == [weak]


def test_metrics_are_trimmed_to_what_the_model_should_see():
    metrics = {"metres_per_pick": 9.1, "smoke.metres_per_pick": 21.2, "smoke.tours": 3, "ms_per_tour": 0.7,
               "max_ms": 1.6, "eval_seconds": 2.0, "cpu_time": 0.1, "gap_pct": 8.4, "tours": 60}
    parent = _p(1, -9.1, metrics=metrics)
    user = PromptBuilder("d", "solve").build(parent, [], []).messages[1]["content"]
    assert 'Metrics: {"gap_pct": 8.4, "metres_per_pick": 9.1, "tours": 60}' in user
    shown = metric_filter(["gap_*", "smoke.tours"])
    assert [k for k in metrics if shown(k)] == ["smoke.tours", "gap_pct"]
    assert not metric_filter(None, timing=("tours",))("tours")


def test_the_evaluator_or_the_config_chooses_the_metrics_shown(tmp_path):
    from evolve.api import compose
    from evolve.engine.parts import make_prompts

    metrics = {"sum_radii": 2.5, "smoke.sum_radii": 2.5, "overlap": 0.0}
    parent = _p(1, 2.5, metrics=metrics)
    default = make_prompts(compose("circle_packing")).build(parent, [], [])
    assert '"sum_radii": 2.5' in default.messages[1]["content"] and "smoke." not in default.messages[1]["content"]
    chosen = make_prompts(compose("circle_packing", ["prompt.metrics=[overlap]"]))
    assert 'Metrics: {"overlap": 0.0}' in chosen.build(parent, [], []).messages[1]["content"]


def test_the_parents_cell_and_features_are_shown():
    parent = _p(1, 1.0, features={"spread": 0.25, "length": 120})
    user = PromptBuilder("d", "solve").build(parent, [], [], cell=(2, 0)).messages[1]["content"]
    assert "MAP-Elites cell: [2, 0] of features length=120, spread=0.25" in user


def _store(tmp_path) -> ProgramDatabase:
    return ProgramDatabase(f"sqlite:///{tmp_path / 'p.db'}", "c")


def test_the_lineages_attempts_come_from_the_parents_and_its_ancestors_children(tmp_path):
    db = _store(tmp_path)
    try:
        def add(n, parent, status=ProgramStatus.VALID, score=None, proposal="", error=""):
            return db.add(iteration=n, status=status, code=f"x = {n}\n", code_hash=str(n), score=score,
                          parent=parent, proposal=proposal, error=error)

        root = add(0, None, score=1.0)
        lineage = Lineage(db, children=3)
        mid = add(1, root, score=2.0, proposal="Mid step.\n<<<<<<< SEARCH")
        add(2, root, ProgramStatus.INVALID, proposal="Crash it.\n<<<<<<< SEARCH", error="Traceback\nZeroDivisionError")
        add(3, mid, ProgramStatus.EDIT_FAILED, proposal="Wrong anchor.\n<<<<<<< SEARCH",
            error="edit 1: SEARCH text not found")
        add(4, mid, score=1.5, proposal="Smaller steps.\n<<<<<<< SEARCH")
        attempts = lineage.attempts(mid)
        assert [(a.program.iteration, a.generations) for a in attempts] == [(2, 1), (3, 0), (4, 0)]
        assert attempts[-1].parent_score == 2.0
        assert [a.program.iteration for a in Lineage(db, children=3).attempts(mid, limit=2)] == [3, 4]  # restored
        user = PromptBuilder("d", "solve").build(mid, [], [], attempts=attempts).messages[1]["content"]
        assert "# Recent attempts on this program's line, and their outcome" in user
        assert "- on its parent: Crash it. -> invalid: ZeroDivisionError" in user
        assert "- on this program: Wrong anchor. -> the edit did not apply: edit 1: SEARCH text not found" in user
        assert "- on this program: Smaller steps. -> score 1.5 (-0.5 against its parent)" in user
    finally:
        db.close()


def _attempt(n):
    child = Program(id=100 + n, iteration=100 + n, status=ProgramStatus.VALID, code="", code_hash=str(n), score=1.0,
                    proposal=f"Idea {n} {'z' * 100}.\n<<<<<<< SEARCH")
    return Attempt(child, 0.5, 0)


def test_when_a_prompt_must_shrink_inspirations_go_before_attempts_and_feedback_stays_longest():
    parent = _p(1, 1.0, feedback="f" * 1200)
    inspirations = [_p(n, 2.0, f"    return {n}  # {'x' * 600}\n") for n in (2, 3)]
    failures = [Program(id=9, iteration=9, status=ProgramStatus.EDIT_FAILED, code="", code_hash="9",
                        error="edit 1: SEARCH text not found " + "y" * 250)]
    args = dict(parent=parent, inspirations=inspirations, failures=failures, scratchpad="Notes. " * 40,
                attempts=[_attempt(n) for n in range(3)])
    builder = PromptBuilder("d", "solve")
    full = builder.build(**args).tokens
    bare = builder.build(parent, [], [])
    assert builder.build(max_tokens=full - 200, **args).trimmed == ("1 inspiration",)
    two = builder.build(max_tokens=full - 700, **args)
    assert two.trimmed[:2] == ("2 inspirations", "1 attempt") and "Idea 0" not in two.messages[1]["content"]
    assert "Idea 2" in two.messages[1]["content"]  # the latest attempt stays longest
    tight = builder.build(max_tokens=bare.tokens + 60, **args)
    assert tight.trimmed[:4] == ("2 inspirations", "3 attempts", "the scratchpad", "the recent failures")
    assert "fff" in tight.messages[1]["content"]  # the parent's feedback outranks all of them


def _ask(model: OpenAIModel, prompt) -> None:
    async def go():
        try:
            await model.propose(prompt)
        finally:
            await model.close()
    asyncio.run(go())


def test_token_counts_are_calibrated_on_the_usage_the_server_reports():
    prompt = PromptBuilder("Pack circles.", "solve").build(_p(1, 1.0, feedback="g" * 3000), [], [])
    with FakeOpenAIServer(lambda request: "no edit") as server:
        model = OpenAIModel(ModelConfig(model="fake-model", base_url=server.base_url, api_key_env=None))
        assert model.token_counter.chars_per_token is None  # nothing seen yet: the prior applies
        _ask(model, prompt)
    counter = model.token_counter
    true = sum(len(m["content"]) // 4 for m in prompt.messages)  # as the fake server counts usage
    assert 3.9 < counter.chars_per_token < 4.2
    counted = counter.count(prompt.messages)
    assert true <= counted <= true * 1.1 and counted < estimate_tokens(prompt.messages, 2.5)
    rebuilt = PromptBuilder("Pack circles.", "solve").build(prompt.parent, [], [], counter=counter)
    assert rebuilt.tokens == counted


def test_token_counts_come_from_the_servers_tokenizer_where_it_has_one():
    prompt = PromptBuilder("Pack circles.", "solve").build(_p(1, 1.0, feedback="g" * 3000), [], [])
    with FakeOpenAIServer(lambda request: FakeReply("no edit", prompt_tokens=1), tokenizer=True) as server:
        model = OpenAIModel(ModelConfig(model="fake-model", base_url=server.base_url, api_key_env=None))
        _ask(model, prompt)  # the usage (1 token) cannot be this prompt's: only /tokenize calibrates
        assert any(entry.path == "/tokenize" for entry in server.log)
    assert 3.9 < model.token_counter.chars_per_token < 4.2


def test_a_counter_with_an_encoder_counts_exactly_and_is_not_recalibrated():
    counter = TokenCounter(encode=lambda text: len(text.split()))
    messages = [{"role": "user", "content": "one two three"}]
    counter.observe(messages, 1000)
    assert counter.exact and counter.count(messages) == 3 + 4 + 3


def test_an_inspiration_close_to_the_parent_is_shown_as_its_diff():
    body = "".join(f"    v{k} = {k}\n" for k in range(20)) + "    return v0\n"
    parent, close = _p(1, 1.0, body), _p(2, 1.5, body.replace("v7 = 7", "v7 = 70"))
    user = PromptBuilder("d", "solve").build(parent, [close], [], labels={2: "best"}).messages[1]["content"]
    section = user[user.index("# Inspiration 1"):]
    assert "2 lines differ" in section and "```diff\n" in section
    assert "-    v7 = 7\n+    v7 = 70\n" in section and "v1 = 1" not in section  # one line of context only


def test_prose_and_code_get_a_ratio_each_once_two_prompts_tell_them_apart():
    def true(messages):  # a tokenizer that splits the prose of the task coarser than the code
        return 3 + sum(4 + len(m["content"]) // (4 if m["role"] == "system" else 2) for m in messages)

    def prompt(code):
        return [{"role": "system", "content": "p" * 4000}, {"role": "user", "content": "c" * code}]

    counter = TokenCounter()
    counter.observe(prompt(1000), true(prompt(1000)))
    pooled = counter.count(prompt(9000))
    assert pooled < true(prompt(9000))  # one pooled ratio under-counts a prompt with more code
    counter.observe(prompt(3000), true(prompt(3000)))
    assert true(prompt(9000)) <= counter.count(prompt(9000)) <= true(prompt(9000)) * 1.06


def test_concurrent_proposals_on_a_server_without_a_tokenizer_all_go_through():
    prompt = PromptBuilder("d", "solve").build(_p(1, 1.0), [], [])
    with FakeOpenAIServer(lambda request: "no edit") as server:
        model = OpenAIModel(ModelConfig(model="fake-model", base_url=server.base_url, api_key_env=None))

        async def go():
            try:
                return await asyncio.gather(*(model.propose(prompt) for _ in range(4)))
            finally:
                await model.close()

        replies = asyncio.run(go())
    assert [r.text for r in replies] == ["no edit"] * 4 and model.token_counter.chars_per_token is not None


def _fitting(server_kw, chars):
    """A model whose context the prompt fits as the server counts (4 characters a token), but not as the
    uncalibrated prior estimates it (2.5); returns the server's requests and the prompt sent."""
    parent = _p(1, 1.0, feedback="g" * chars)
    builder = PromptBuilder("Pack circles.", "solve")
    true = sum(len(m["content"]) // 4 for m in builder.build(parent, [], []).messages)
    built = []

    def build(budget, counter=None):
        built.append(builder.build(parent, [], [], max_tokens=budget, counter=counter))
        return built[-1]

    with FakeOpenAIServer(lambda request: "no edit", context_tokens=true + 300, **server_kw) as server:
        model = OpenAIModel(ModelConfig(model="fake-model", base_url=server.base_url, api_key_env=None,
                                        max_tokens=200, context_tokens=true + 300))
        assert estimate_tokens(builder.build(parent, [], []).messages, 2.5) > model.prompt_budget

        async def go():
            try:
                return await model.propose_built(build)
            finally:
                await model.close()

        reply = asyncio.run(go())
        requests = list(server.requests)
    return reply, requests, built[-1]


def test_a_prompt_the_prior_would_refuse_is_counted_on_the_server_first():
    reply, requests, prompt = _fitting({}, 6000)
    assert reply.text == "no edit" and prompt.trimmed == ()  # nothing left out: it fits as the server counts
    assert [r["max_tokens"] for r in requests] == [1, 200]  # a one-token request told its true size
    assert reply.prompt_tokens > 1.9 * sum(len(m["content"]) // 4 for m in prompt.messages)  # both requests paid
    reply, requests, prompt = _fitting({"tokenizer": True}, 6000)
    assert prompt.trimmed == () and [r["max_tokens"] for r in requests] == [200]  # its tokenizer told


def test_the_edit_format_is_an_overridable_template(tmp_path):
    (tmp_path / "edit_diff.txt").write_text("- Reply with SEARCH/REPLACE blocks, like the ones in our style guide.\n")
    builder = PromptBuilder("d", "solve", PromptConfig(template_dir=str(tmp_path)))
    system = builder.build(_p(1, 1.0), [], []).messages[0]["content"]
    assert system.rstrip().endswith("like the ones in our style guide.") and "An example reply" not in system
    assert "one ```python fenced block" in builder.build(_p(1, 1.0), [], [], mode="full").messages[0]["content"]
