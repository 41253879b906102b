"""Retrievers, the outer stage of a system (what the registry declares): BM25 and dense retrieval over a
query side, and the fusion of other systems' runs; a component run is shared within an invocation."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field, replace

from bench.data.pairs import Pair
from bench.methods.retrieve.ranking import Run
from bench.systems import builders as b
from bench.systems.context import RunContext
from bench.systems.needs import Need
from bench.systems.options import RunOptions
from bench.systems.registry import get_system
from bench.systems.stages.encoders import Role
from bench.systems.stages.queries import QuerySide, Raw
from bench.systems.stages.settings import (BM25_OPTIONS, DENSE_OPTIONS, HYBRID_PSQ_WEIGHT, NMT_DECODE, Job, keys,
                                           merge_reads, mt_config)

log = logging.getLogger(__name__)


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


def _index_identity(pair: Pair) -> tuple:
    """The index need's identity: the index's own key (:func:`bench.methods.retrieve.bm25.index_key`: the
    documents' fingerprint, the analyzer, the version), so pairs over one corpus plan one index. The fingerprint
    reads the corpus once, then is remembered in BENCH_HOME. Where it cannot be had yet (:func:`_documents_here`),
    the dataset stands for the documents."""
    from bench.methods.retrieve import bm25

    if _documents_here(pair):
        return tuple(sorted(bm25.index_key(pair.collection(), pair.doc_lang).items()))
    return (("dataset", pair.dataset_id), ("analyzer", bm25.analyzer_name(pair.doc_lang)))


def _documents_here(pair: Pair) -> bool:
    """Whether the documents' fingerprint can be had now: their files are here (nothing is fetched or downloaded
    for it: a dry run fetches nothing), and the needs are not asked while a plan is only probed
    (:func:`bench.infra.store.probing`: a run's planned identity, which reads no corpus)."""
    from bench.infra.store import NotBuilt, probing, raise_if_probing

    try:
        raise_if_probing("the documents' fingerprint")
        if not pair.is_available():  # not here, nor in the mirror
            return False
        with probing():  # in the mirror only: not copied for this
            pair.collection().fingerprint_key()
    except NotBuilt:
        return False
    return True


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
        return merge_reads(self.query.reads, BM25_OPTIONS)

    @property
    def family(self) -> str:
        return self.query.family

    def run(self, ctx: RunContext) -> Run:
        return self.query.bm25_run(ctx, _bm25_index(ctx))

    def needs(self, job: Job) -> list[Need]:
        index = Need("lucene-index", _index_identity(job.pair), f"Lucene index of {job.pair.name}", b.build_index,
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
        return merge_reads(self.query.reads, self.foreign.reads, self.english.reads, DENSE_OPTIONS)

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
        query_needs = [n for n in query_role.needs(job) if n.key not in set(keys(doc_needs))]
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
                        keys(doc_needs), gpu=True))
        out.append(Need("query-encoding", (pair.dataset_id, query_role.identity(job), options.max_length, source),
                        f"{source[0]} queries of {pair.name} by {b.model_name(query.model)}", b.build_queries,
                        (query,), keys(query_role.needs(job)) + keys(texts[-1:]), gpu=True))
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
        return merge_reads(("hybrid_weight",), *(get_system(u).reads for u in self.uses))

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
