"""Choosing the bm25-psq weight of the hybrids on the tuning pairs only (issue 6).

    bench run --pair ha-en-dev --systems bm25-psq,mdense-maxsim,optical-maxsim --runs runs-tuning --no-report
    bench run --pair yo-en-train --systems bm25-psq,mdense-maxsim,optical-maxsim --runs runs-tuning --no-report
    python benchmarks/fusion_tune.py --runs runs-tuning --out benchmarks/results/fusion_tuning.csv

For each tuning pair and dense system, fuses the stored runs with bm25-psq at each weight
(bench.methods.retrieve.fusion.combsum) and appends MAP to ``--out``; prints the weight with the best mean
MAP over the pairs for each dense system.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pandas as pd

from bench.results.scoring import means, per_query
from bench.data.pairs import get_pair
from bench.methods.retrieve.fusion import combsum
from bench.results.runs import read_trec

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--pairs", default="ha-en-dev,yo-en-train")
    parser.add_argument("--dense", default="mdense-maxsim,optical-maxsim")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for name in args.pairs.split(","):
        pair = get_pair(name)
        if not pair.tuning:
            raise SystemExit(f"{name} is a test collection: tune on ha-en-dev or yo-en-train")
        qrels = pair.collection().qrels
        lexical = read_trec(args.runs / name / "bm25-psq" / "run.trec")
        for dense_name in args.dense.split(","):
            dense = read_trec(args.runs / name / dense_name / "run.trec")
            for w in WEIGHTS:
                ap = means(per_query(combsum([dense, lexical], [1 - w, w]), qrels, ["AP"]))["AP"]
                rows.append({"pair": name, "dense": dense_name, "psq_weight": w, "AP": round(ap, 4)})
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    mean = table.groupby(["dense", "psq_weight"])["AP"].mean().unstack()
    print(mean.round(4).to_string())
    for dense_name, row in mean.iterrows():
        print(f"{dense_name}: best psq weight {row.idxmax()} (mean MAP {row.max():.4f})")


if __name__ == "__main__":
    main()
