"""What a system builds before it can run: its cached artifacts, as tasks (the needs of a grid cell).

For a system, the run options, a seed and a pair, :func:`needs_of` lists the cached artifacts the
system's run builds on first use, each a :class:`Need`: its kind and an identity that determines the
artifact (cells with one need share one build), the needs it is built from (``after``), and a build
that calls the same cached builder with the same settings as the system itself (the settings come
from :mod:`bench.systems`), so that a cell run after its needs finds everything cached. The needs:
a packaged or hub model (converted or downloaded once), the pair's Lucene index, the IBM1 table of
its (noised) bitext, the MT model (and the source states its trainings share), the NMT translations
of the queries, a distilled student, the documents' encoding and the queries'.

:func:`combine` merges the needs of many cells: one need per identity; the encodings of one model on
one pair become one (both scorings' files; split into shards when asked, :mod:`bench.systems.needs_build`);
students that would fill one teacher cache are built one after the other. A system bench does not
know (a plugin, a test's system) needs nothing here: it builds what it needs in its own run.
Downloads (the collection, the bitext's corpora) are not needs: the grid fetches them while it
validates, before any task starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from bench.data import models

from bench.systems import needs_build as nb
from bench.systems.options import RunOptions
from bench.data.pairs import Pair
from bench.infra.store import fingerprint
from bench.systems import DEFAULT_ENCODER, NMT_DECODE, PSQ_IBM1, CI_MT_STEPS, System, get_system, student_config

__all__ = ["Need", "needs_of", "combine", "Key"]

Key = tuple  # (kind, identity)


@dataclass(frozen=True)
class Need:
    """One cached artifact to build: ``fn(*args)`` builds it (or finds it) and returns its directory
    where it has one. ``fn`` is a module-level function and ``args`` plain data, so a need pickles
    (Ray sends it to a worker). ``gpu``: a training or an encoding (a GPU task where there are GPUs)."""

    kind: str
    identity: tuple
    label: str
    fn: Callable[..., Path | None]
    args: tuple = ()
    after: tuple[Key, ...] = ()
    gpu: bool = False
    shares: tuple | None = None  # needs with the same value fill one inner cache: built one after the other

    @property
    def key(self) -> Key:
        return (self.kind, self.identity)

    def build(self) -> Path | None:
        return self.fn(*self.args)


def encoder_spec(options: RunOptions) -> str:
    return options.encoder or DEFAULT_ENCODER


def teacher_spec(options: RunOptions) -> str:
    return options.teacher or encoder_spec(options)


def mt_config(options: RunOptions) -> dict:
    """The MT training settings a system without an ``mt_model`` trains with (as ``systems._nmt_queries``)."""
    steps = options.mt_steps or (CI_MT_STEPS if options.profile == "ci" else None)
    return {"max_steps": steps} if steps else {}


def needs_of(system: System, options: RunOptions, seed: int, pair: Pair, ref: str) -> list[Need]:
    """The needs of ``system``'s run on ``pair`` (resolved in a worker by ``ref``: a built-in pair's
    name or a pair file's path) under ``options`` and ``seed`` (the cell's), its own needs last."""
    if system.plugin is not None:
        return []
    spec, out = system.spec, []
    if spec.get("retriever") == "fusion":
        for used in system.uses:
            out += needs_of(get_system(used), options, seed, pair, ref)
        return out
    if spec.get("retriever") == "bm25":
        if spec.get("query") == "psq":
            out += _table(pair, ref, options, seed)
        if spec.get("query") == "nmt":
            out += _translations(pair, ref, options, seed)
        out.append(Need("lucene-index", (pair.dataset_id, pair.doc_lang), f"Lucene index of {pair.name}",
                        nb.build_index, (ref,)))
    elif spec.get("retriever") == "dense":
        if options.rerank:
            out += needs_of(get_system(options.rerank), options.without("rerank", "rerank_depth"), seed, pair, ref)
        out += _dense(spec, pair, ref, options, seed)
    return out


def _bitext_id(options: RunOptions, seed: int) -> tuple:
    noise = float(options.bitext_noise)
    return noise, int(seed) if noise else 0  # without noise the bitext does not depend on the seed


def _variant(options: RunOptions, seed: int) -> str:
    noise, seed = _bitext_id(options, seed)
    return f" (noise {noise:g}, seed {seed})" if noise else ""


def _model(spec: str) -> list[Need]:
    """A packaged model is converted once, a hub model downloaded once; a local directory needs nothing."""
    if spec not in models.PACKAGED and spec not in models.ALIASES and Path(spec).expanduser().exists():
        return []
    return [Need("model", (spec,), f"model {spec}", nb.build_model, (spec,))]


def _table(pair: Pair, ref: str, options: RunOptions, seed: int) -> list[Need]:
    side = "en" if pair.query_lang == "en" else "foreign"
    identity = (pair.dataset_id, *_bitext_id(options, seed), side, tuple(sorted(PSQ_IBM1.items())))
    return [Need("ibm1-table", identity, f"IBM1 table of {pair.name}{_variant(options, seed)}", nb.build_table,
                 (ref, float(options.bitext_noise), int(seed), PSQ_IBM1))]


def _mt(pair: Pair, ref: str, options: RunOptions, seed: int) -> list[Need]:
    """The MT model `bench train mt` trains (none with an ``mt_model``), after the source states it
    shares with the other trainings on the same bitext."""
    if options.mt_model:
        return []
    from bench.methods.translate.mt_train import MtConfig

    config = mt_config(options)
    encoder = MtConfig.from_dict(config).encoder
    noise = float(options.bitext_noise)
    states = Need("mt-states", (pair.dataset_id, *_bitext_id(options, seed), encoder, fingerprint(config)),
                  f"MT source states of {pair.name}{_variant(options, seed)}", nb.build_mt_states,
                  (ref, config, noise, int(seed)), tuple(n.key for n in _model(encoder)), gpu=True)
    trained = Need("mt-model", (pair.dataset_id, noise, int(seed), fingerprint(config)),
                   f"MT model of {pair.name} (seed {seed}{f', noise {noise:g}' if noise else ''})", nb.build_mt,
                   (ref, config, noise, int(seed)), (states.key,), gpu=True)
    return [*_model(encoder), states, trained]


def _translations(pair: Pair, ref: str, options: RunOptions, seed: int) -> list[Need]:
    """The queries translated by NMT (and the model's FLORES provenance), after the MT model."""
    trained = _mt(pair, ref, options, seed)
    model = options.mt_model or (trained[-1].identity,)
    noise = float(options.bitext_noise) if not options.mt_model else 0.0
    return [*trained, Need("nmt-translations", (pair.dataset_id, model, tuple(sorted(NMT_DECODE.items()))),
                           f"NMT translations of {pair.name}'s queries", nb.build_translations,
                           (ref, options.mt_model, mt_config(options), noise, int(seed)),
                           (trained[-1].key,) if trained else (), gpu=True)]


def _dense(spec: dict, pair: Pair, ref: str, options: RunOptions, seed: int) -> list[Need]:
    """A dense system: its models (a student trained first), the documents' and the queries' encodings,
    each after what its model needs (the documents by the teacher wait for no student)."""
    scoring = spec.get("scoring", "mean")
    out: list[Need] = []
    source: tuple = ("foreign",)
    if "recipe" in spec:
        config = student_config(spec["recipe"], options, pair)
        noise, recipe = float(options.bitext_noise), spec["recipe"]
        teacher = _model(config.teacher)
        out += teacher + [n for n in _model(config.student) if n.key not in {t.key for t in teacher}]
        student = Need("student", (pair.dataset_id, recipe, fingerprint(asdict(config)), noise, int(seed)),
                       f"{recipe} student of {pair.name} (seed {seed}{f', noise {noise:g}' if noise else ''})",
                       nb.build_student, (ref, config, noise, int(seed)), tuple(n.key for n in out), gpu=True,
                       shares=("teacher-states", pair.dataset_id, noise, int(seed), config.teacher,
                               config.teacher_prefix, config.steps, config.batch_size))
        out.append(student)
        trained = nb.Student(ref, recipe, config, noise, int(seed))
        sides = [(trained, ("student", student.identity), (student.key,)),
                 (config.teacher, ("spec", config.teacher), tuple(n.key for n in teacher))]
        (doc_model, doc_id, doc_after), (query_model, query_id, query_after) = \
            sides if pair.query_lang == "en" else sides[::-1]  # the student encodes the foreign side
    else:
        doc_model = query_model = teacher_spec(options) if "teacher" in spec else encoder_spec(options)
        out += _model(doc_model)
        doc_id = query_id = ("spec", doc_model)
        doc_after = query_after = tuple(n.key for n in out)
        if spec.get("query") == "human-translation":
            source = ("translation",)
        elif spec.get("query") == "nmt":
            translated = _translations(pair, ref, options, seed)
            out += translated
            source, query_after = ("nmt", translated[-1].identity), (*query_after, translated[-1].key)
    doc = nb.Encoding(ref, doc_model, options.max_length, frozenset({scoring}), options.memory_budget,
                      options.rerank_depth, bool(options.rerank))
    query = nb.QueryEncoding(ref, query_model, options.max_length, source,
                             frozenset({"mean"} if scoring == "mean" else {"mean", "states"}),
                             options.mt_model, mt_config(options), float(options.bitext_noise), int(seed))
    out.append(Need("doc-encoding", (pair.dataset_id, doc_id, options.max_length),
                    f"documents of {pair.name} by {_model_name(doc_model)}", nb.build_encoding, (doc, 1), doc_after,
                    gpu=True))
    out.append(Need("query-encoding", (pair.dataset_id, query_id, options.max_length, source),
                    f"{source[0]} queries of {pair.name} by {_model_name(query_model)}", nb.build_queries, (query,),
                    query_after, gpu=True))
    return out


def _model_name(model: str | nb.Student) -> str:
    if isinstance(model, nb.Student):
        return f"the {model.recipe} student (seed {model.seed}{f', noise {model.noise:g}' if model.noise else ''})"
    return model.rstrip("/").rsplit("/", 1)[-1]


# --- combining the needs of many cells ------------------------------------------------------------------


def combine(needs: Iterable[Need], shards: int = 1) -> list[Need]:
    """One need per key, in first-seen order: the encodings of one model on one pair merged (every
    scoring's files), a document encoding split into ``shards`` shard needs and their assembly (which
    keeps the key); students that share a teacher cache ordered one after the other."""
    merged: dict[Key, Need] = {}
    for need in needs:
        known = merged.get(need.key)
        merged[need.key] = need if known is None else _merge(known, need)
    out: list[Need] = []
    for need in merged.values():
        out += _shard(need, shards) if need.kind == "doc-encoding" and shards > 1 else [need]
    last: dict[tuple, Key] = {}
    for i, need in enumerate(out):
        if need.shares is not None:
            if need.shares in last:
                out[i] = replace(need, after=(*need.after, last[need.shares]))
            last[need.shares] = need.key
    return out


def _merge(a: Need, b: Need) -> Need:
    """Two needs with one key: the encodings' files of both, the dependencies of both."""
    after = tuple(dict.fromkeys((*a.after, *b.after)))
    if a.kind in ("doc-encoding", "query-encoding"):
        spec = replace(a.args[0], modes=a.args[0].modes | b.args[0].modes)
        return replace(a, args=(spec, *a.args[1:]), after=after)
    return replace(a, after=after)


def _shard(need: Need, shards: int) -> list[Need]:
    """A document encoding as a plan (lengths, the MaxSim decision), ``shards`` shards and their assembly."""
    spec: Any = need.args[0]
    plan = Need("doc-plan", need.identity, f"batch plan of the {need.label}", nb.build_doc_plan, (spec,), need.after)
    parts = [Need("doc-shard", (*need.identity, i, shards), f"shard {i + 1}/{shards} of the {need.label}",
                  nb.build_shard, (spec, i, shards), (plan.key,), gpu=True) for i in range(shards)]
    return [plan, *parts, replace(need, args=(spec, shards), after=tuple(p.key for p in parts), gpu=False,
                                  label=f"{need.label} ({shards} shards assembled)")]
