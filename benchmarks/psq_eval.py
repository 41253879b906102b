"""MAP of bm25-psq variants against BM25 on the raw query (issue 4: tuning and measurement).

    BENCH_MIRROR=... BENCH_HOME=... python benchmarks/psq_eval.py ha-en-dev yo-en-train --grid 1
    BENCH_MIRROR=... BENCH_HOME=... python benchmarks/psq_eval.py sw-en ha-en yo-en

Without --grid, only the defaults of bench.methods.translate.psq.PsqConfig are run. Prints one line per
(pair, variant); outputs are not kept.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import time

from bench.data.bitext import load_bitext
from bench.results.scoring import means, per_query
from bench.data.pairs import get_pair
from bench.methods.retrieve import bm25
from bench.methods.translate.ibm1 import translation_table
from bench.methods.translate.psq import PsqConfig, psq_query


def mean_ap(run, qrels) -> float:
    return means(per_query(run, qrels, ["AP"]))["AP"]


BEST_STAGE1 = dict(top_k=5, renormalise=False, keep_original=0.5)  # best of stage 1 on both tuning pairs


def variants(grid: int):
    if not grid:
        yield 5, PsqConfig()
        return
    if grid == 1:  # how many translations, renormalised or not, the original token kept or not
        for top_k, renorm, keep in itertools.product((1, 3, 5, 10), (True, False), (0.0, 0.5)):
            yield 5, PsqConfig(top_k=top_k, renormalise=renorm, keep_original=keep)
        return
    # grid 2, around the best of stage 1: cumulative cut, floor, weight of the original, iterations
    for change in (dict(cumulative=0.5), dict(cumulative=1.0), dict(min_prob=0.001), dict(min_prob=0.05),
                   dict(keep_original=0.25), dict(keep_original=1.0), dict(drop_stopwords=False)):
        yield 5, PsqConfig(**{**BEST_STAGE1, **change})
    yield 10, PsqConfig(**BEST_STAGE1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pairs", nargs="+")
    parser.add_argument("--grid", type=int, default=0, help="1: stage 1, 2: stage 2 of the tuning")
    parser.add_argument("--noise", type=float, default=0.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in args.pairs:
        pair = get_pair(name)
        coll = pair.collection()
        index = bm25.build_index(coll, pair.doc_lang)
        raw = bm25.search(index, [(q.query_id, q.text) for q in coll.queries], pair.query_lang)
        print(f"{name}\tbm25-raw\tMAP={mean_ap(raw, coll.qrels):.4f}", flush=True)
        bitext = load_bitext(pair, noise=args.noise, seed=0)
        print(f"{name}\tbitext\t{bitext.sources}\t{bitext.counts}\t{bitext.fingerprint}", flush=True)
        tables = {}
        for iterations, config in variants(args.grid):
            if iterations not in tables:
                started = time.perf_counter()
                tables[iterations] = translation_table(bitext, source_lang=pair.query_lang, iterations=iterations)[0]
                print(f"{name}\tibm1 iterations={iterations}\t{time.perf_counter() - started:.1f}s (or cached)",
                      flush=True)
            table = tables[iterations]
            queries = {q.query_id: psq_query(q.text, table, config, source_lang=pair.query_lang) for q in coll.queries}
            run = bm25.search_weighted(index, queries)
            print(f"{name}\tpsq iter={iterations} {config}\tMAP={mean_ap(run, coll.qrels):.4f}", flush=True)


if __name__ == "__main__":
    main()
