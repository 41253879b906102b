"""NMT (issue 4): train the pair's MT model, score it on FLORES-200 devtest, and measure bm25-nmt /
nmt-dense against bm25 (and the oracles) by MAP.

    HF_HUB_OFFLINE=1 BENCH_MIRROR=/work/shared/mirror BENCH_HOME=/tmp/bench-home-nmt \
        python benchmarks/nmt_eval.py sw-en [--mt-model DIR_OR_ID] [--systems bm25,bm25-nmt,nmt-dense] [--shortlist N]
        [--clusters K1,K2] [--layers N] [--steps N]

``--shortlist N`` trains with the generator's training shortlist (``MtConfig.shortlist``, issue 23's cheaper
step) instead of the default model, and scores the systems with it; ``--clusters 1000,4000`` likewise with an
adaptive softmax (``MtConfig.output_clusters``); ``--layers`` and ``--steps`` set the decoder's depth and the
training steps (``MtConfig.layers``, ``MtConfig.max_steps``); any of them trains a model apart from the default.

Prints the training record (bench-mt.json: steps, minutes, peak memory), FLORES chrF/BLEU, and one
line per system; nothing is written outside BENCH_HOME.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time

from bench.results.scoring import means, per_query
from bench.data.pairs import get_pair
from bench.systems import RunContext, get_system
from bench.methods.translate import flores, mt_train, nmt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pair")
    parser.add_argument("--mt-model", help="evaluate this seq2seq model instead of training the default one")
    parser.add_argument("--systems", default="bm25,bm25-nmt,nmt-dense,oracle-bm25,oracle-dense")
    parser.add_argument("--no-flores", action="store_true")
    parser.add_argument("--shortlist", type=int, default=0, help="train with MtConfig.shortlist=N (0: the default)")
    parser.add_argument("--clusters", default="",
                        help="train with MtConfig.output_clusters=K1,K2,... (empty: the default)")
    parser.add_argument("--layers", type=int, help="train with MtConfig.layers=N (decoder layers; default 3)")
    parser.add_argument("--steps", type=int, help="train with MtConfig.max_steps=N (default 2000)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    pair = get_pair(args.pair)
    t = time.time()
    config = {"shortlist": args.shortlist} if args.shortlist else {}
    if args.clusters:
        config["output_clusters"] = [int(c) for c in args.clusters.split(",")]
    if args.layers:
        config["layers"] = args.layers
    if args.steps:
        config["max_steps"] = args.steps
    path = args.mt_model or mt_train.train_mt(pair, config=config)
    ref = nmt.resolve(path)
    print(f"mt model: {ref.path} (fingerprint {ref.fingerprint}), ready in {time.time() - t:.0f} s", flush=True)
    meta = ref.path / "bench-mt.json"
    if meta.exists():
        record = json.loads(meta.read_text())
        print("training record:", json.dumps({k: record[k] for k in (
            "steps", "epochs", "stopped_by", "train_minutes", "total_minutes", "peak_rss_mb", "final")}), flush=True)
    if not args.no_flores:
        t = time.time()
        scores = flores.devtest_scores(ref, pair.query_lang, nmt.DecodeParams())
        print(f"FLORES-200 devtest {pair.query_lang}->en: chrF {scores['chrF']:.2f} BLEU {scores['BLEU']:.2f} "
              f"({scores['sentences']} sentences, {time.time() - t:.0f} s) {scores['chrF_signature']} | "
              f"{scores['BLEU_signature']}", flush=True)
    coll = pair.collection()
    options = {"mt_model": str(ref.path)} if args.mt_model or config else {}
    for name in args.systems.split(","):
        t = time.time()
        ctx = RunContext(pair, coll, options=dict(options))
        run = get_system(name).run(ctx)
        got = means(per_query(run, coll.qrels, ["AP", "nDCG@10", "R@100"]))
        print(f"{pair.name}\t{name}\tMAP={got['AP']:.4f}\tnDCG@10={got['nDCG@10']:.4f}\t"
              f"R@100={got['R@100']:.4f}\t({time.time() - t:.0f} s)", flush=True)
        if name in ("bm25-nmt",):
            decode = nmt.DecodeParams(**{k: v for k, v in ctx.artifacts["mt_model"]["decode"].items()})
            queries = nmt.translate_queries(ctx.foreign_queries()[:5], ref, pair.query_lang, "en", decode)
            for (qid, text), (_, tr) in zip(ctx.foreign_queries()[:5], queries):
                print(f"  {qid}: {text!r} -> {tr!r}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
