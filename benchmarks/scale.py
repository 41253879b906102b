"""How bench's retrieval costs grow with the corpus: synthetic corpora of 10k, 100k and 1M passages.

    HF_HUB_OFFLINE=1 BENCH_MIRROR=../shared/mirror nice python benchmarks/scale.py [--sizes 10000,100000]

Each corpus is a seeded sample (with replacement) of the AfriQA sw-en passages under new ids, read
through bench's own collection code; the queries are sw-en's. Per size, each step runs in a fresh
subprocess (so its peak RSS, ``VmHWM``, is its own), with a temporary ``BENCH_HOME``:

- ``bm25``: ``bench.methods.retrieve.bm25.build_index`` of the corpus (Lucene, in-process JVM included in
  the RSS), then ``bm25.search`` of the sw-en queries at depth 1000;
- ``dense``: the encoder replaced by seeded random unit vectors of width 384, written to a ``.npy``
  file (a step of its own) and searched memory-mapped by ``bench.methods.retrieve.dense.search`` at depth 1000;
- ``maxsim``: what MaxSim would need for the corpus's token states (the tokenizer's count of each
  passage, times how often it was drawn) against the default memory budget
  (``bench.methods.retrieve.chunked.default_budget``: a quarter of RAM), through ``dense.maxsim_plan``; where
  it switches to reranking, the mean-pooled top ``rerank_depth`` is reranked by MaxSim over random
  token states of the candidates only (``dense.candidate_states`` with a random encoder, streamed to
  disk as a real run does), each candidate with its true token count.

Prints ``name: value`` lines, then how each cost grows (the ratio of neighbouring sizes and the
exponent of a least-squares fit of log cost on log size), and writes them to ``--out``. Temporary
files (indexes, vectors, states) are deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 384  # multilingual-e5-small's
DEPTH = 1000
RERANK_DEPTH = 100  # RunOptions' default rerank_depth: how many documents the MaxSim fallback reranks
ENCODER = "multilingual-e5-small"
WRITE_ROWS = 1 << 16


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# --- the corpus -----------------------------------------------------------------------------------


def synthetic_collection(size: int, seed: int):
    """``size`` passages drawn (seeded, with replacement) from AfriQA sw-en, as a bench Collection;
    also the index of the source passage of each, and the source passages."""
    from bench.data.collection import Collection, Doc, LazyDataset, Records, register_dataset
    from bench.data.pairs import get_pair

    source = get_pair("sw-en").collection()
    passages = list(source.iter_docs())
    picks = np.random.default_rng(seed).integers(0, len(passages), size)
    width = len(str(size - 1))
    docs = [Doc(f"s{i:0{width}d}", passages[j].title, passages[j].text) for i, j in enumerate(picks.tolist())]
    records = Records(queries=source.queries, docs=docs, qrels={},
                      sources={"afriqa-sw-en": source.docs_fingerprint,
                               "sample": f"{size} of {len(passages)} with replacement, seed {seed}"})
    dataset_id = f"bench-scale/{size}@{seed}"
    register_dataset(dataset_id, LazyDataset(dataset_id, "sw", "en", lambda: records))
    return Collection(dataset_id), picks, passages


def unit_rows(rng, n: int, dtype=np.float32) -> np.ndarray:
    """``n`` seeded random unit vectors of width WIDTH, made a block at a time (float32 only per block)."""
    out = np.empty((n, WIDTH), dtype=dtype)
    for start in range(0, n, WRITE_ROWS):
        x = rng.standard_normal((min(WRITE_ROWS, n - start), WIDTH), dtype=np.float32)
        out[start:start + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def query_vectors(n_queries: int, seed: int) -> np.ndarray:
    return unit_rows(np.random.default_rng([seed, 1]), n_queries)


def vectors_path(workdir: Path, size: int) -> Path:
    return workdir / f"vectors-{size}.npy"


# --- the steps (each in its own process) ----------------------------------------------------------


def step_vectors(size: int, seed: int, workdir: Path) -> dict:
    """Random unit document vectors written as a .npy file, a block at a time (no memory map)."""
    rng = np.random.default_rng([seed, 2])
    t0 = time.perf_counter()
    with open(vectors_path(workdir, size), "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (size, WIDTH)})
        for start in range(0, size, WRITE_ROWS):
            f.write(unit_rows(rng, min(WRITE_ROWS, size - start)).tobytes())
    return {"vectors_write_s": time.perf_counter() - t0,
            "vectors_file_mb": vectors_path(workdir, size).stat().st_size / 2**20}


def step_dense(size: int, seed: int, workdir: Path) -> dict:
    from bench.data.pairs import get_pair
    from bench.methods.retrieve import dense

    qids = [q.query_id for q in get_pair("sw-en").collection().queries]  # what a search holds: ids, vectors
    doc_ids = [f"s{i:0{len(str(size - 1))}d}" for i in range(size)]
    docs = np.load(vectors_path(workdir, size), mmap_mode="r")
    queries = query_vectors(len(qids), seed)
    dense.search(qids[:1], queries[:1], doc_ids[:10], np.asarray(docs[:10]), depth=1)  # imports torch
    before = peak_rss_mb()
    t0 = time.perf_counter()
    run = dense.search(qids, queries, doc_ids, docs, depth=DEPTH)
    elapsed = time.perf_counter() - t0
    peak = peak_rss_mb()  # before the check below reads the whole file
    assert all(len(r) == min(DEPTH, size) for r in run.values())
    # the best document of the first query, checked against numpy on the whole matrix (a block at a time)
    best = max(((float(s), -i) for start in range(0, size, WRITE_ROWS)
                for i, s in enumerate(np.asarray(docs[start:start + WRITE_ROWS]) @ queries[0], start)))
    assert next(iter(run[qids[0]])) == doc_ids[-best[1]]
    return {"dense_search_s": elapsed, "dense_search_peak_rss_mb": peak, "dense_rss_before_search_mb": before,
            "dense_queries": len(qids)}


def step_bm25(size: int, seed: int, workdir: Path) -> dict:
    from bench.methods.retrieve import bm25

    collection, _, _ = synthetic_collection(size, seed)
    queries = [(q.query_id, q.text) for q in collection.queries]
    t0 = time.perf_counter()
    index = bm25.build_index(collection, "en")
    index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = bm25.search(index, queries, "en", DEPTH)
    search_s = time.perf_counter() - t0
    index_mb = sum(p.stat().st_size for p in index.path.rglob("*") if p.is_file()) / 2**20
    return {"bm25_index_s": index_s, "bm25_search_s": search_s, "bm25_peak_rss_mb": peak_rss_mb(),
            "bm25_index_mb": index_mb, "bm25_hits": sum(len(r) for r in run.values())}


class RandomEncoder:
    """Stands in for the encoder: seeded random unit token states, each text with its true token count."""

    def __init__(self, counts: dict[str, int], seed: int):
        self.counts, self.seed, self.calls = counts, seed, 0
        self.max_length = 512
        self.ref = SimpleNamespace(name="random unit vectors")

    def key(self, side: str) -> dict:
        return {"model": "random-unit-vectors", "seed": self.seed, "width": WIDTH, "side": side}

    def encode(self, texts, side, token_states=False, desc=None):
        from bench.methods.retrieve.encoder import Encoded
        from bench.methods.token_states import TokenStates

        self.calls += 1
        rng = np.random.default_rng([self.seed, 3, self.calls])
        offsets = TokenStates.offsets_of([self.counts[t] for t in texts])
        return Encoded(unit_rows(rng, len(texts)), unit_rows(rng, int(offsets[-1]), np.float16), offsets)


def kept_tokens(texts: list[str], prefix: str) -> list[int]:
    """Tokens the encoder keeps per text (not special; the prefix kept, as on the document side)."""
    from transformers import AutoTokenizer

    from bench.data import models

    tokenizer = AutoTokenizer.from_pretrained(models.resolve(ENCODER).path)  # the tokenizer alone, not the model
    masks = tokenizer([prefix + t for t in texts], truncation=True, max_length=512,
                      return_special_tokens_mask=True)["special_tokens_mask"]
    return [len(m) - sum(m) for m in masks]


def step_maxsim(size: int, seed: int, workdir: Path) -> dict:
    from bench.methods.retrieve import dense, maxsim
    from bench.methods.retrieve.chunked import default_budget
    from bench.methods.retrieve.ranking import top_k
    from bench.methods.token_states import TokenStates

    collection, picks, passages = synthetic_collection(size, seed)
    per_source = kept_tokens([p.default_text() for p in passages], "passage: ")
    tokens = int(np.asarray(per_source, dtype=np.int64)[picks].sum())
    out = {"maxsim_doc_tokens": tokens}
    if size <= 20_000:  # the library's own count (tokenizing the whole corpus) agrees
        out["maxsim_doc_tokens_library"] = dense.doc_tokens(dense.encoder(ENCODER), collection)[0]
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("bench.methods.retrieve.dense").addHandler(handler)
    budget = default_budget()
    plan = dense.maxsim_plan(size, tokens, WIDTH, budget, RERANK_DEPTH)
    out.update(maxsim_mode=plan["mode"], maxsim_states_gib=plan["states_bytes"] / 2**30,
               maxsim_budget_gib=budget / 2**30, maxsim_log=messages[0] if messages else "")
    if plan["mode"] != "rerank":
        return out
    qids = [q.query_id for q in collection.queries]
    doc_ids = [f"s{i:0{len(str(size - 1))}d}" for i in range(size)]
    t0 = time.perf_counter()
    first = dense.search(qids, query_vectors(len(qids), seed), doc_ids,
                         np.load(vectors_path(workdir, size), mmap_mode="r"), depth=RERANK_DEPTH)
    out["maxsim_first_stage_s"] = time.perf_counter() - t0
    candidates = sorted({d for docs in top_k(first, RERANK_DEPTH).values() for d in docs})
    counts = {p.default_text(): n for p, n in zip(passages, per_source)}
    t0 = time.perf_counter()
    states = dense.candidate_states(RandomEncoder(counts, seed), collection, candidates, budget, WIDTH)
    out["maxsim_candidate_states_s"] = time.perf_counter() - t0
    q_texts = [q.text for q in collection.queries]
    q_lengths = [max(1, n) for n in kept_tokens(q_texts, "")]  # the query side keeps no prefix tokens
    q_offsets = TokenStates.offsets_of(q_lengths)
    q_states = unit_rows(np.random.default_rng([seed, 4]), int(q_offsets[-1]), np.float16)
    t0 = time.perf_counter()
    run = maxsim.rerank(qids, q_states, q_offsets, states.doc_ids, states.states, states.offsets, first, RERANK_DEPTH)
    out["maxsim_rerank_s"] = time.perf_counter() - t0
    assert all(set(run[q]) == set(first[q]) for q in qids)
    return {**out, "maxsim_candidates": len(candidates), "maxsim_candidate_states_gib": states.states.nbytes / 2**30,
            "maxsim_peak_rss_mb": peak_rss_mb()}


def step_prepare(size: int, seed: int, workdir: Path) -> dict:
    """The packaged encoder converted and AfriQA fetched once, before any step that is measured."""
    from bench.data import models
    from bench.data.pairs import get_pair

    models.resolve(ENCODER)
    return {"source_passages": get_pair("sw-en").collection().docs_count}


STEPS = {"prepare": step_prepare, "vectors": step_vectors, "dense": step_dense, "bm25": step_bm25,
         "maxsim": step_maxsim}


# --- the driver -----------------------------------------------------------------------------------


def run_step(step: str, size: int, seed: int, workdir: Path, timeout: float) -> dict:
    result = workdir / f"{step}-{size}.json"
    env = {**os.environ, "BENCH_HOME": str(workdir / "home")}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", step, "--size", str(size), "--seed", str(seed),
           "--workdir", str(workdir)]
    t0 = time.perf_counter()
    try:
        subprocess.run(cmd, env=env, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        print(f"# {step} at {label(size)} passed its {timeout:.0f} s limit", file=sys.stderr)
        return {f"{step}_timeout_s": timeout}
    values = json.loads(result.read_text())
    print(f"# {step} {label(size)}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return values


def growth(name: str, sizes: list[int], values: dict[int, float]) -> list[str]:
    """Ratios of neighbouring sizes and the fitted exponent of cost ~ size^e."""
    have = [n for n in sizes if values.get(n) is not None and values[n] > 0]
    lines = [f"{name}_growth_{label(b)}_over_{label(a)}: {values[b] / values[a]:.2f}" for a, b in zip(have, have[1:])]
    if len(have) >= 2:
        x, y = np.log([float(n) for n in have]), np.log([values[n] for n in have])
        lines.append(f"{name}_exponent: {np.polyfit(x, y, 1)[0]:.2f}")
    return lines


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated corpus sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="where the temporary corpora go (default: a new temp dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.txt")
    parser.add_argument("--step-timeout", type=float, default=1800, help="seconds allowed to one step")
    parser.add_argument("--keep", action="store_true", help="keep the temporary files")
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # a child: one step of one size
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        values = STEPS[args.step](args.size, args.seed, args.workdir)
        (args.workdir / f"{args.step}-{args.size}.json").write_text(json.dumps(values))
        return
    sizes = sorted(int(s) for s in args.sizes.split(","))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    per_size: dict[int, dict] = {}
    try:
        source = run_step("prepare", 0, args.seed, workdir, args.step_timeout)
        for size in sizes:
            values: dict = {}
            for step in ("vectors", "dense", "maxsim", "bm25"):
                values.update(run_step(step, size, args.seed, workdir, args.step_timeout))
            vectors_path(workdir, size).unlink(missing_ok=True)
            shutil.rmtree(workdir / "home" / "dense-docs", ignore_errors=True)  # candidate states
            shutil.rmtree(workdir / "home" / "indexes", ignore_errors=True)
            per_size[size] = values
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    total = physical_memory_gib()
    lines = [f"cpus: {len(os.sched_getaffinity(0))}", f"ram_gib: {total:.1f}", f"seed: {args.seed}",
             f"sizes: {','.join(str(n) for n in sizes)}", f"queries: {per_size[sizes[0]].get('dense_queries')}",
             f"source_passages: {source['source_passages']}", f"depth: {DEPTH}", f"vector_width: {WIDTH}",
             f"rerank_depth: {RERANK_DEPTH}"]
    for size in sizes:
        for name, value in per_size[size].items():
            if name != "dense_queries":
                lines.append(f"{name}_{label(size)}: {fmt(value)}")
    for name in ("bm25_index_s", "bm25_search_s", "bm25_peak_rss_mb", "dense_search_s", "dense_search_peak_rss_mb",
                 "maxsim_states_gib", "maxsim_first_stage_s", "maxsim_candidate_states_s", "maxsim_rerank_s",
                 "maxsim_peak_rss_mb"):
        lines += growth(name, sizes, {n: per_size[n].get(name) for n in sizes})
    top = sizes[-1]
    if "dense_search_peak_rss_mb" in per_size[top]:
        rss = per_size[top]["dense_search_peak_rss_mb"]
        lines.append(f"goal_dense_search_{label(top)}_under_4gib: {'yes' if rss < 4096 else 'no'} ({rss:.0f} MiB)")
    lines.append(f"wall_s: {time.perf_counter() - started:.0f}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


def physical_memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


if __name__ == "__main__":
    main()
