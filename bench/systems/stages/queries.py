"""Query sides: what text a system searches with, and what producing it builds (an IBM Model 1 table,
an MT model and its translations)."""

from __future__ import annotations

from bench.errors import BenchError
from bench.infra.store import fingerprint
from bench.methods.retrieve.ranking import Run
from bench.systems import builders as b
from bench.systems.context import RunContext
from bench.systems.needs import Need
from bench.systems.options import RunOptions
from bench.systems.stages.settings import (NMT_DECODE, NMT_OPTIONS, PSQ_IBM1, PSQ_QUERY, Job, bm25_params, keys,
                                           model_needs, mt_config)


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
        from bench.methods.translate.mt_config import MtConfig, rate_name

        pair, config = job.pair, mt_config(job.options)
        encoder = MtConfig.from_dict(config).encoder
        noise, seed = float(job.options.bitext_noise), int(job.seed)
        states = Need("mt-states", (pair.dataset_id, *job.bitext_id(), encoder, fingerprint(config)),
                      f"MT source states of {pair.name}{job.variant()}", b.build_mt_states,
                      (job.ref, config, noise, seed), keys(model_needs(encoder)), gpu=True)
        trained = Need("mt-model", (pair.dataset_id, noise, seed, fingerprint(config)),
                       f"MT model of {pair.name} (seed {seed}{f', noise {noise:g}' if noise else ''})", b.build_mt,
                       (job.ref, config, noise, seed), (states.key,), gpu=True,
                       rate=rate_name(MtConfig.from_dict(config)))
        return [*model_needs(encoder), states, trained]

    def needs(self, job: Job) -> list[Need]:
        """The queries translated by NMT (and the model's FLORES provenance), after the MT model."""
        trained = self._mt(job)
        options = job.options
        noise = float(options.bitext_noise) if not options.mt_model else 0.0
        return [*trained, Need("nmt-translations", self.source(job)[1], f"NMT translations of {job.pair.name}'s "
                               "queries", b.build_translations,
                               (job.ref, options.mt_model, mt_config(options), noise, int(job.seed), NMT_DECODE),
                               keys(trained[-1:]), gpu=True)]

    def source(self, job: Job) -> tuple:
        model = job.options.mt_model or (self._mt(job)[-1].identity,)
        return ("nmt", (job.pair.dataset_id, model, tuple(sorted(NMT_DECODE.items()))))
