"""How each need of a system (:mod:`bench.systems.stages`) is built: the cached builders its run calls.

Every function here takes plain, picklable arguments (a pair by reference: a built-in pair's name
or a pair file's path, resolved where the task runs; Ray sends them to a worker) and returns the
artifact's directory where the builder says it. Each calls what the system's own run calls on first
use, with the settings the stage passes (the stage declares them once), so the run finds it cached;
where the run and the build share a step (the NMT translation of the queries), both call the one
function here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.data.pair_ref import resolve_pair
from bench.data.pairs import Pair
from bench.infra.store import bench_home

log = logging.getLogger(__name__)

def build_model(spec: str) -> Path:
    from bench.data import models

    return models.resolve(spec).path


def build_index(ref: str) -> Path:
    from bench.methods.retrieve import bm25

    pair = resolve_pair(ref)
    return bm25.build_index(pair.collection(), pair.doc_lang).path.parent


def build_table(ref: str, noise: float, seed: int, settings: dict) -> Path:
    """The IBM1 table of bm25-psq (the Psq stage: the pair's bitext, noised with the run's seed)."""
    from bench.data.bitext import load_bitext
    from bench.methods.translate.ibm1 import translation_table

    pair = resolve_pair(ref)
    _, table_fp = translation_table(load_bitext(pair, noise=noise, seed=seed), source_lang=pair.query_lang, **settings)
    return bench_home() / "translation-tables" / table_fp


def build_mt_states(ref: str, config: dict, noise: float, seed: int) -> None:
    """The frozen encoder's states of the bitext's foreign side, which every MT training on this bitext
    reads (``mt_train._train``): built once, before the trainings that share it run side by side."""
    from bench.data import models
    from bench.data.bitext import load_bitext
    from bench.methods.translate import mt_data
    from bench.methods.translate.mt_config import MtConfig

    cfg = MtConfig.from_dict(config)
    foreign = [f for f, _ in load_bitext(resolve_pair(ref), noise=noise, seed=seed).pairs]
    mt_data.source_states(models.resolve(cfg.encoder), cfg.encoder_layer, cfg.max_source_len, foreign,
                          mt_data.texts_fingerprint(foreign))


def build_mt(ref: str, config: dict, noise: float, seed: int) -> Path:
    from bench.methods.translate import mt_train

    return mt_train.train_mt(resolve_pair(ref), config=config, noise=noise, seed=seed)


def translated_queries(pair: Pair, queries: list[tuple[str, str]], mt_model: str | None, config: dict, noise: float,
                       seed: int, decode: dict) -> tuple[list[tuple[str, str]], dict]:
    """``queries`` translated into the documents' language by NMT, and the model's provenance (its FLORES
    scores): ``mt_model`` (a seq2seq model), else the model ``bench train mt`` trains on the pair's bitext
    with ``config``, ``noise`` and ``seed`` (trained now, for up to an hour on a CPU, unless cached)."""
    from bench.methods.translate import flores, mt_train, nmt

    if mt_model:
        ref = nmt.resolve(mt_model)
    else:
        if pair.doc_lang != "en":
            raise BenchError(f"bench trains foreign→English NMT only; {pair.name} needs an `mt_model` option",
                             "give a seq2seq model that translates into " + pair.doc_lang)
        ref = nmt.resolve(mt_train.train_mt(pair, config=config, noise=noise, seed=seed))
    info = flores.provenance(ref, pair.query_lang, pair.doc_lang, decode)
    params = nmt.DecodeParams(**decode)
    return nmt.translate_queries(queries, ref, pair.query_lang, pair.doc_lang, params), info


def nmt_queries(ref: str, mt_model: str | None, config: dict, noise: float, seed: int,
                decode: dict) -> list[tuple[str, str]]:
    """The pair's queries as the NMT systems translate them (:func:`translated_queries`)."""
    pair = resolve_pair(ref)
    queries = [(q.query_id, q.text) for q in pair.collection().queries]
    return translated_queries(pair, queries, mt_model, config, noise, seed, decode)[0]


def build_translations(ref: str, mt_model: str | None, config: dict, noise: float, seed: int, decode: dict) -> None:
    nmt_queries(ref, mt_model, config, noise, seed, decode)


@dataclass(frozen=True)
class Student:
    """A distilled student as a model of an encoding (its checkpoint is a need of its own)."""

    ref: str
    recipe: str
    config: Any  # bench.methods.distill.trainer.OpticalConfig
    noise: float
    seed: int


def build_student(ref: str, config, noise: float, seed: int) -> Path:
    from bench.methods.distill.recipes import trained_student

    return trained_student(resolve_pair(ref), config, noise=noise, seed=seed)[0]


def _spec(model: str | Student) -> str:
    """The model spec an encoder is made of (a student: its checkpoint's directory, as the system uses it)."""
    if isinstance(model, Student):
        return str(build_student(model.ref, model.config, model.noise, model.seed))
    return model


# --- encodings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoding:
    """The documents of a pair encoded by a model, for the scorings in ``modes`` ("mean", "maxsim")."""

    ref: str
    model: str | Student
    max_length: int | None
    modes: frozenset
    memory_budget: int | None = None
    rerank_depth: int = 100
    rerank: bool = False  # the systems rerank a first stage (`rerank` option)


def _doc_side(e: Encoding):
    from bench.methods.retrieve.encoder import encoder

    collection = resolve_pair(e.ref).collection()
    return encoder(_spec(e.model), e.max_length), collection


def _doc_files(e: Encoding, enc, collection) -> set[str]:
    """What the dense runs of ``modes`` read of the corpus (:func:`bench.methods.retrieve.dense.corpus_files`)."""
    from bench.methods.retrieve import dense
    from bench.methods.retrieve.chunked import default_budget

    budget = int(e.memory_budget or default_budget())
    return set().union(*(dense.corpus_files(enc, collection, mode, budget, e.rerank_depth, e.rerank)
                         for mode in sorted(e.modes)))


def build_encoding(e: Encoding, shards: int = 1) -> Path | None:
    """The encoding (assembled from ``shards`` when more than one: built by :func:`build_shard`)."""
    from bench.methods.retrieve import encodings

    enc, collection = _doc_side(e)
    built: dict[str, Path] = {}
    if "mean" in e.modes:  # first, as the runs do (mean scoring first): a small corpus keeps its states in the pass
        built["vectors"] = encodings.doc_vectors(enc, collection, shards).path
    files = _doc_files(e, enc, collection)
    if "states" in files:
        built["states"] = encodings.doc_states(enc, collection, shards).path
    if "vectors" in files and "vectors" not in built:
        built["vectors"] = encodings.doc_vectors(enc, collection, shards).path
    return built.get("vectors", built.get("states"))


def build_doc_plan(e: Encoding) -> None:
    """What the shards of an encoding read first: the documents' lengths and the MaxSim decision."""
    from bench.methods.retrieve import encodings

    enc, collection = _doc_side(e)
    encodings.doc_lengths(enc, collection)
    _doc_files(e, enc, collection)


def build_shard(e: Encoding, index: int, shards: int) -> Path | None:
    from bench.methods.retrieve import encodings

    enc, collection = _doc_side(e)
    files = _doc_files(e, enc, collection)
    return encodings.doc_shard(enc, collection, index, shards, states="states" in files) if files else None


def model_name(model: str | Student) -> str:
    """How a need's label names a model."""
    if isinstance(model, Student):
        return f"the {model.recipe} student (seed {model.seed}{f', noise {model.noise:g}' if model.noise else ''})"
    return model.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class QueryEncoding:
    """A pair's queries (``source``: ("foreign",), ("translation",) or ("nmt", ...)) encoded by a model,
    pooled ("mean") and/or token by token ("states")."""

    ref: str
    model: str | Student
    max_length: int | None
    source: tuple
    modes: frozenset
    mt_model: str | None = None  # for NMT queries: what translates them (as nmt_queries)
    mt_config: dict | None = None
    noise: float = 0.0
    seed: int = 0
    decode: dict | None = None


def build_queries(q: QueryEncoding) -> None:
    from bench.methods.retrieve.encoder import encoder
    from bench.methods.retrieve.encodings import query_vectors

    queries = resolve_pair(q.ref).collection().queries
    if q.source[0] == "translation":
        if not all(x.translation for x in queries):
            raise BenchError(f"{resolve_pair(q.ref).name} has no human English translation of some queries",
                             "oracle systems need a collection with translated queries, such as AfriQA")
        texts = [(x.query_id, x.translation) for x in queries]
    elif q.source[0] == "nmt":
        texts = nmt_queries(q.ref, q.mt_model, q.mt_config or {}, q.noise, q.seed, q.decode or {})
    else:
        texts = [(x.query_id, x.text) for x in queries]
    enc = encoder(_spec(q.model), q.max_length)
    for states in sorted({m == "states" for m in q.modes}):
        query_vectors(enc, texts, token_states=states)
