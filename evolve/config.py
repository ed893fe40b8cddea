"""Structured configs: the schema Hydra validates overrides against, and the typed objects the engine reads.

These dataclasses are not frozen because Hydra must merge command-line overrides into them; treat the
instances the engine receives as read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from sandboxes.limits import SandboxLimits  # the sandbox owns its contract; the engine reuses it

__all__ = [
    "BudgetConfig",
    "Config",
    "DatabaseConfig",
    "FeatureDimension",
    "LLMConfig",
    "ModelConfig",
    "NoveltyConfig",
    "ProblemConfig",
    "PromptConfig",
    "RayConfig",
    "SandboxConfig",
    "SandboxLimits",
    "register_configs",
    "to_config",
]


@dataclass
class FeatureDimension:
    """One axis of the MAP-Elites grid.

    Attributes:
        name: key in `Score.features` (or `code_length`, which the engine computes itself).
        min: lower end of the range; smaller values fall in the first bin (unused when `adaptive`).
        max: upper end of the range; larger values fall in the last bin (unused when `adaptive`).
        bins: number of cells along this axis.
        adaptive: the bins follow the values the valid programs really have: each holds about as many
            distinct values (quantiles), recomputed, with every cell, whenever the number of valid programs
            reaches a power of two.
    """

    name: str = MISSING
    min: float = 0.0
    max: float = 1.0
    bins: int = 8
    adaptive: bool = False


@dataclass
class ProblemConfig:
    """A problem: which evaluator scores it, where its initial program is, what its grid measures.

    Attributes:
        name: the problem's name, as in `problem=NAME`.
        description: one line shown by `evolve problems`.
        evaluator: `module:Class` of the trusted `evaluators.Evaluator` subclass.
        initial: path of the initial program, relative to the problem folder.
        readme: path of the long description, relative to the problem folder (goes into prompts).
        directory: absolute path of the problem folder (filled in by discovery).
        params: keyword arguments for the evaluator's constructor.
        features: MAP-Elites feature dimensions.
        limits: sandbox limits for this problem's candidates.
        stage_limits: limits for particular cascade stages, by stage name (each such stage gets a
            session of its own).
        packages: top-level packages a candidate may import besides the standard library (and
            `sandbox.preload`, default numpy: numpy is always in view); nothing else installed is in its view.
        data: read-only folders a candidate may read (relative to the problem folder); the rest of the
            problem folder, its evaluator and held-out data, is never in view.
        direction: `maximize` (default) or `minimize` the evaluator's `Score.value`. Internally the
            campaign always maximises (a minimised value is negated where the evaluator's scores enter
            the engine, `evolve.problems.load_evaluator`); users see the natural value.
        evaluator_object: an evaluator class or instance pickled by value (set by `evolve.run(...,
            evaluator=...)` for evaluators defined in the caller's own module); replaces `evaluator`.
        repeats: 1 for a deterministic evaluator (the contract: the same program, the same score); a
            problem noisy by nature declares k > 1, and the campaign scores each program that would
            become the best k times, recording the mean as its score and the spread in its metrics
            (`repeats.n`, `repeats.min`, `repeats.max`, `repeats.std`).
        metric: for an OpenEvolve or ShinkaEvolve evaluator (`evaluator: "openevolve:..."` or
            `"shinka:..."`), the metric that is the score when a result holds no `combined_score`
            (null: the mean of the numeric metrics, with a warning). A native evaluator returns
            `Score.value` and takes none.
    """

    name: str = MISSING
    description: str = ""
    evaluator: str = MISSING
    initial: str = "initial.py"
    readme: str = "README.md"
    directory: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    features: list[FeatureDimension] = field(default_factory=list)
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    stage_limits: dict[str, SandboxLimits] = field(default_factory=dict)
    packages: list[str] = field(default_factory=lambda: ["numpy"])
    data: list[str] = field(default_factory=list)
    direction: str = "maximize"
    evaluator_object: str | None = None
    repeats: int = 1
    metric: str | None = None


@dataclass
class ModelConfig:
    """One OpenAI-compatible model.

    Attributes:
        model: model name sent to the endpoint.
        name: label in records and reports (null: the model name).
        base_url: endpoint URL, e.g. `http://127.0.0.1:8000/v1` for vLLM; null for OpenAI's default.
        api_key_env: environment variable holding the key; null sends `EMPTY` (local servers).
        weight: share of proposals under `selection: fixed`, and the prior elsewhere.
        temperature: sampling temperature.
        max_tokens: largest reply, in tokens.
        timeout: seconds for one proposal, the client's retries included: a hung endpoint fails once, after
            this long. Raise it for a slow model (a CPU llama.cpp) whose answers may take longer.
        max_retries: retries of one request inside the client (429 with retry-after, 5xx, a dropped
            connection), within `timeout`.
        concurrency: requests to this model at once.
        price_input_per_million: USD per million prompt tokens.
        price_output_per_million: USD per million completion tokens.
        context_tokens: the model's context window in tokens (prompt and reply together); prompts are
            trimmed to fit `context_tokens - max_tokens` (see `PromptBuilder.build`). Null: unknown, no
            fitting.
        edit_format: how this model is asked to write its edits (null: `llm.edit_format`; see `LLMConfig`).
        structured_edits: the most edits one structured reply of this model may hold (null:
            `llm.structured_edits`).
    """

    model: str = MISSING
    name: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    weight: float = 1.0
    temperature: float = 0.8
    max_tokens: int = 4096
    timeout: float = 120.0
    max_retries: int = 2
    concurrency: int = 4
    price_input_per_million: float = 0.0
    price_output_per_million: float = 0.0
    context_tokens: int | None = None
    edit_format: str | None = None
    structured_edits: int | None = None


@dataclass
class LLMConfig:
    """The proposer.

    Attributes:
        kind: `offline` (the built-in mutator, no network), `openai` (one model: the fields below),
            `ensemble` (the `models` list), `tiers` (the `models` list ordered from cheap to strong, used
            cheapest first; see `escalate_after`), `replay` (the responses recorded in `source`), or the name
            of a plugin in the `evolve.proposers` entry-point group.
        model, base_url, api_key_env, temperature, max_tokens, timeout, max_retries,
        price_input_per_million, price_output_per_million, context_tokens: the one model of `kind: openai`
            (see `ModelConfig`).
        models: the models of `kind: ensemble` or `kind: tiers`.
        selection: how an ensemble picks a model per proposal: `fixed` (by weight), `ucb` or
            `thompson` (adaptive, by observed improvements per dollar).
        exploration: UCB's exploration constant.
        escalate_after: `kind: tiers` moves to the next stronger model after this many proposals by the current
            one without a new best program of the campaign, and one model back down after each new best.
        rest_after: consecutive failures after which a model is rested (the others carry on).
        rest_seconds: first rest; it doubles each time the same model is rested again.
        max_rest_seconds: the longest rest.
        max_wait_seconds: when every model is failing, how long the campaign waits for one to answer
            again (counted from the first request that failed) before it stops with an error naming each
            model's last error. A hung endpoint fails its requests only after `timeout`, so the campaign
            stops after the longer of the two.
        warn_after_seconds: a request that has waited this long with no answer from its model names the
            model on the terminal (once per outage; 1.5 times the model's slowest answer when that is more).
        probe_timeout: seconds to wait for each endpoint's answer to a model list before the campaign
            starts (null: no probe, e.g. for a server that starts on the first request).
        concurrency: proposals requested at once, over all models.
        source: the run dir whose recorded responses `kind: replay` plays back.
        max_consecutive_failures: the campaign stops with a clear error after this many failed proposals
            in a row (a wrong URL or model name, not a passing fault).
        max_edits: the offline mutator makes between 1 and this many edits per proposal.
        max_unapplied_in_a_row: answered proposals in a row whose edit could not be applied (status
            `edit_failed`; transport failures neither count nor break the run) after which `on_unapplied`
            acts (null: never).
        on_unapplied: `stop` ends the campaign with an error naming the commonest reasons (so a paid budget
            is not spent on replies that never apply); `warn` logs the same warning and goes on.
        edit_format: how a model is asked to write its edits (per model in `models` too): `structured`
            asks for a JSON object of edits whose schema can only name the parent's EVOLVE-BLOCKs and their
            lines, sent for the server's constrained decoding (`response_format` json_schema, or llama-cpp-
            python's json_object with a schema); an endpoint that rejects it falls back to text once, with one
            line. `diff` asks for SEARCH/REPLACE text only, `rewrite` for the whole program only. `auto`
            (default) asks a tiny schema-constrained question before the start (with `probe_timeout` set) and
            uses `structured` where the answer conforms, else the text formats drawn by `prompt.diff/full/
            crossover`. Replies are read tolerantly whatever was asked.
        structured_edits: the most edits one structured reply may hold (per model in `models` too). 1 suits
            models under a billion parameters: their second edit often overlaps the first, and a long reply
            is cut off at `max_tokens`.
    """

    kind: str = "offline"
    model: str = "offline-mutator"
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float = 0.8
    max_tokens: int = 4096
    timeout: float = 120.0
    max_retries: int = 2
    price_input_per_million: float = 0.0
    price_output_per_million: float = 0.0
    models: list[ModelConfig] = field(default_factory=list)
    selection: str = "thompson"
    exploration: float = 1.0
    escalate_after: int = 10
    rest_after: int = 3
    rest_seconds: float = 30.0
    max_rest_seconds: float = 300.0
    max_wait_seconds: float = 120.0
    warn_after_seconds: float = 45.0
    probe_timeout: float | None = 10.0
    concurrency: int = 4
    source: str | None = None
    max_consecutive_failures: int = 25
    max_edits: int = 2
    context_tokens: int | None = None
    max_unapplied_in_a_row: int | None = 20
    on_unapplied: str = "stop"
    edit_format: str = "auto"
    structured_edits: int = 3

    def model_configs(self) -> list[ModelConfig]:
        """The models this config names: `models`, or the one model of `kind: openai`."""
        if self.kind in ("ensemble", "tiers"):
            return [replace(m, edit_format=m.edit_format or self.edit_format,
                            structured_edits=m.structured_edits or self.structured_edits) for m in self.models]
        return [ModelConfig(model=self.model, base_url=self.base_url, api_key_env=self.api_key_env,
                            temperature=self.temperature, max_tokens=self.max_tokens, timeout=self.timeout,
                            max_retries=self.max_retries, concurrency=self.concurrency,
                            price_input_per_million=self.price_input_per_million,
                            price_output_per_million=self.price_output_per_million,
                            context_tokens=self.context_tokens, edit_format=self.edit_format,
                            structured_edits=self.structured_edits)]


@dataclass
class SandboxConfig:
    """Where candidates run.

    Attributes:
        kind: `process`: a fork server per worker, one namespaced, locked-down child per session;
            `docker`: the same fork server in a warm container per worker; or the name of a plugin in
            the `evolve.sandboxes` entry-point group.
        user: when evolve runs as root, run each session under an unprivileged uid of its own (a range per
            sandbox, from 2**20 up; any name turns it on); null: never switch.
        network_isolation: put the candidate in a new, empty network namespace.
        preload: modules the fork server imports once, so sessions start fast.
        scratch_mb: size of the candidate's private writable scratch dir (a tmpfs).
        scratch_inodes: most files and directories the scratch dir may hold.
        allow: more paths a candidate may read, beyond the interpreter, its standard library, the
            problem's packages and data (see `evolve.evaluation.sandboxing.visible_paths`).
        image: `docker` only: the image (`evolve sandbox build` makes the default one locally).
        memory_mb, pids, cpus: `docker` only: the container's limits.
        interpreter: `docker` only: `host` binds this machine's interpreter and packages into an empty image
            (every node needs them at the same paths); `image` runs the image's own (built with `evolve
            sandbox build --interpreter`, e.g. `sandbox.image=evolve-sandbox:python`), so nodes need not share
            paths.
    """

    kind: str = "process"
    user: str | None = "nobody"
    network_isolation: bool = True
    preload: list[str] = field(default_factory=lambda: ["numpy"])
    scratch_mb: int = 64
    scratch_inodes: int = 4096
    allow: list[str] = field(default_factory=list)
    image: str = "evolve-sandbox:local"
    memory_mb: int = 4096
    pids: int = 512
    cpus: float = 1.0
    interpreter: str = "host"


@dataclass
class DatabaseConfig:
    """The program database.

    Attributes:
        url: SQLAlchemy URL; null means `sqlite:///<run_dir>/programs.db`.
        islands: number of islands.
        migration_interval: iterations between ring migrations (0 turns migration off).
        migration_count: best programs each island sends to the next one per migration.
        exploitation_ratio: share of parents drawn from the island's best programs (rank-weighted).
        exploration_ratio: share of parents drawn from the elites of the island's MAP-Elites cells;
            the rest are drawn uniformly from every valid program of every island.
        num_top_inspirations: inspirations taken from the island's best programs.
        num_diverse_inspirations: inspirations taken from other cells of the island's grid.
        top_k: best programs kept in each island's in-memory ranking.
        failed_edits_in_prompt: recent failed edits whose reasons go into prompts.
        population: the selection strategy (`evolve.population`): `islands` (islands with ring migration
            and a MAP-Elites grid each), `tournament` (one pool, the best of `tournament_size` random
            programs), or an entry point's name in the `evolve.populations` group.
        tournament_size: programs drawn for each tournament (`population: tournament`).
        retry_seconds: how long a campaign waits for a database that stopped answering (a server restarting,
            a dropped connection, a SQLite file another process keeps locked), retrying with backoff; the
            program waiting is committed once it answers. Longer, the campaign stops with one line and
            `evolve resume` continues it. SQLite waits for a lock up to a third of it (at most 30 s) per try.
    """

    url: str | None = None
    islands: int = 4
    migration_interval: int = 40
    migration_count: int = 2
    exploitation_ratio: float = 0.6
    exploration_ratio: float = 0.3
    num_top_inspirations: int = 2
    num_diverse_inspirations: int = 2
    top_k: int = 32
    failed_edits_in_prompt: int = 3
    population: str = "islands"
    tournament_size: int = 4
    retry_seconds: float = 90.0


@dataclass
class RayConfig:
    """Where evaluation workers run.

    Attributes:
        address: null starts a private local Ray instance (never a cluster a `ray start` left running);
            `auto` joins the cluster `ray start` recorded (or RAY_ADDRESS); `host:port` or
            `ray://host:10001` joins that cluster.
        num_workers: evaluation actors; null sizes the pool from the cluster's CPUs and `worker_cpus`.
        worker_cpus: CPUs each evaluation actor reserves (lower it, e.g. 0.5, for evaluations that
            mostly wait, to run more workers than CPUs).
        ready_timeout: seconds to wait for every worker to be placed and to build its evaluator and
            sandbox; past it (with `local_start`) the campaign goes on in its local slots, one line says why, and
            Ray is tried again later.
        start_timeout: seconds a private instance's node may take to register with its GCS (Ray's own limit,
            30 s, is too few on a loaded machine); past it the campaign goes on in its local slots.
        num_cpus: CPUs of a local instance (null: all of this machine's).
        include_dashboard: start the Ray dashboard (and its metrics agents) with a local instance; off by
            default: it costs about 0.9 GB and seconds of start-up. For a dashboard that outlives campaigns,
            `ray start --head` once and run campaigns with `ray.address=auto`.
        dashboard_host: interface the dashboard binds to.
        metrics: export the campaign's Ray metrics (`evolve.observe.metrics`; Prometheus scrapes them).
        local_start: score the first programs in slots of this process (the candidate still in the sandbox)
            while Ray starts or is joined and its workers come up, then hand over to them; false waits for
            Ray's workers (for a driver machine that cannot run the sandbox, say).
        start_after: with `local_start`, seconds the local slots work alone before a private instance
            (`address` null, no dashboard) starts: its start-up takes seconds of CPU, which a campaign that
            ends sooner (a smoke run, a test) would only lose; 0 starts it at once. A cluster is joined at once.
        start_min_eta: with `local_start`, a private instance starts only while the campaign is expected to
            run at least this many seconds more (the progress line's ETA: the iterations left at the pace so
            far, or the wall budget left; unknown counts as long): on a small machine its start-up's CPU would
            cost a shorter campaign more than its workers give back. null: whatever the ETA.
    """

    address: str | None = None
    num_workers: int | None = None
    worker_cpus: float = 1.0
    ready_timeout: float = 120.0
    start_timeout: float = 300.0
    num_cpus: int | None = None
    include_dashboard: bool = False
    dashboard_host: str = "127.0.0.1"
    metrics: bool = True
    local_start: bool = True
    start_after: float = 5.0
    start_min_eta: float | None = 60.0


@dataclass
class BudgetConfig:
    """When a campaign stops (whichever comes first).

    Attributes:
        iterations: proposals in total, the initial program not counted.
        wall_seconds: wall-clock seconds for this invocation (null: no limit).
        target_score: stop once the best score reaches this value.
        patience: stop after this many iterations without a new best.
        max_cost_usd: stop once proposals have cost this much (the ones in flight still finish).
    """

    iterations: int = 100
    wall_seconds: float | None = None
    target_score: float | None = None
    patience: int | None = None
    max_cost_usd: float | None = None


@dataclass
class NoveltyConfig:
    """The near-duplicate filter applied before evaluation (see `evolve.proposals.novelty`).

    Attributes:
        threshold: reject a child whose canonical tokens are at least this similar to its parent's or an
            inspiration's; 1.0 rejects only programs identical up to names, comments and docstrings
            (checked against every evaluated program); lower values also reject tiny edits.
    """

    threshold: float = 1.0


@dataclass
class PromptConfig:
    """Prompt building.

    Attributes:
        template_dir: a folder with `system.txt` and `user.txt` that replace the built-in templates.
        max_feedback_chars: feedback and error text is cut to this many characters.
        diff: probability that a proposal asks for SEARCH/REPLACE edits.
        full: probability that it asks for a full rewrite of the EVOLVE-BLOCKs.
        crossover: probability that it shows a second parent and asks to combine the two.
        scratchpad_interval: iterations between rewrites of the scratchpad (0: no scratchpad).
        chars_per_token: the estimate of a prompt's tokens when fitting it into a model's
            `context_tokens` (no tokenizer is loaded): characters divided by this. 2.5 is conservative
            for code and English with common BPE tokenizers (3.5 to 4.5 on average; small models' ones
            measured 2.8 to 2.9 on prompts with example programs); lower it for one that splits finer. Only
            the prior: a model's own tokenizer (llama.cpp's `/tokenize`, tiktoken) or the usage its replies
            report replace it once known.
        metrics: glob patterns of the metrics a model is shown (null: the evaluator's `prompt_metrics`, else
            all but earlier cascade stages' (`smoke.*`) and timing ones).
        inspiration_slack: an inspiration scoring below the parent by more than this share of the parent's
            magnitude is not shown, unless the population chose it for its diversity.
        attempts: how many recent attempts on the parent's line (its and its ancestors' children, with
            their outcome) a prompt shows (0: none).
    """

    template_dir: str | None = None
    max_feedback_chars: int = 1500
    diff: float = 0.7
    full: float = 0.15
    crossover: float = 0.15
    scratchpad_interval: int = 10
    chars_per_token: float = 2.5
    metrics: list[str] | None = None
    inspiration_slack: float = 0.2
    attempts: int = 5


@dataclass
class Config:
    """A whole campaign.

    Attributes:
        problem: the problem group (`problem=NAME`).
        llm: the proposer group.
        sandbox: the sandbox group.
        database: the database group.
        ray: the Ray group.
        budget: stop conditions.
        prompt: prompt building.
        novelty: the near-duplicate filter.
        seed: seeds parent sampling and the offline mutator.
        max_in_flight: iterations in flight at once; null: twice the evaluation slots plus llm.concurrency
            (every slot busy, the next child waiting for each, and llm.concurrency proposals requested).
        max_evaluator_errors: the campaign stops with an error after this many evaluator errors (the
            trusted evaluator raised, status `evaluator_error`) in a row.
        progress: show the live display (`auto`: on a terminal, elsewhere the run dir first and then a plain
            line every `progress_interval` seconds; `on`: the live display; `off`: neither).
        progress_interval: seconds between the plain progress lines printed without a terminal.
        name: the campaign's name in the database; null means `<problem>/<run dir name>`.
    """

    problem: ProblemConfig = MISSING
    llm: LLMConfig = field(default_factory=LLMConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    novelty: NoveltyConfig = field(default_factory=NoveltyConfig)
    seed: int = 0
    max_in_flight: int | None = None
    max_evaluator_errors: int = 10
    progress: str = "auto"
    progress_interval: float = 30.0
    name: str | None = None


def register_configs(problems: Iterable[ProblemConfig]) -> None:
    """Store the schemas and the `problems` (`evolve.problems.discover()`) so Hydra validates
    `config.yaml`, the groups and every override."""
    from hydra.core.config_store import ConfigStore  # here: the verbs that only read a run need no Hydra

    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(group="llm", name="llm_schema", node=LLMConfig)
    cs.store(group="sandbox", name="sandbox_schema", node=SandboxConfig)
    cs.store(group="database", name="database_schema", node=DatabaseConfig)
    cs.store(group="ray", name="ray_schema", node=RayConfig)
    for problem in problems:
        cs.store(group="problem", name=problem.name, node=problem)


def to_config(cfg: DictConfig | dict) -> Config:
    """Turn a composed DictConfig (or a plain dict read from a run dir) into typed `Config` objects."""
    schema = OmegaConf.structured(Config)
    merged = OmegaConf.merge(schema, cfg)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]
