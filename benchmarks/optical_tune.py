"""The OPTICAL tuning study (issue 6): distillation variants trained and scored on tuning pairs only.

    BENCH_MIRROR=../shared/mirror BENCH_THREADS=1 python benchmarks/optical_tune.py ha-en-dev \
        --variants zero-shot,sdistill,ot,ot+sent --out benchmarks/results/optical_tuning/ha-en-dev.csv

Each variant is a change to the shared budget of :mod:`bench.methods.distill.recipes`; it is trained on the
pair's bitext (guarded against the pair's queries; cached by fingerprint) and scored by mean pooling
and by MaxSim against the teacher's passages. One row per (variant, scoring) is appended to ``--out``
with MAP, nDCG@10, training time and peak memory. Test collections are refused: the study must never
see the queries bench reports.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench.methods.distill.recipes import OPTICAL, SDISTILL, describe, trained_student
from bench.methods.distill.trainer import budgeted as in_steps
from bench.results.scoring import means, per_query
from bench.data.pairs import get_pair
from bench.methods.retrieve import dense
from bench.systems import DEFAULT_ENCODER

# The recipes as the studies before issue 21 ran them (300 steps, every layer trained): the variants below are
# changes to these, so a variant's name keeps meaning the student its rows were trained as
OPTICAL_300 = replace(OPTICAL, epochs=None, steps=300, freeze_layers=0, w_ot=1.0)
SDISTILL_300 = replace(SDISTILL, epochs=None, steps=300)
OT = replace(SDISTILL_300, w_ot=1.0, w_sent=0.0)
VARIANTS = {
    "zero-shot": None,
    "sdistill": SDISTILL_300,
    "ot": OT,  # the prototype's recipe: OT alone, uniform marginals
    "ot+sent": replace(OT, w_sent=1.0),
    "ot-idf+sent": replace(OT, w_sent=1.0, marginals="idf"),
    "ot-unbal+sent": replace(OT, w_sent=1.0, tau=0.1),
    # ε = 0.05 leaves the plan nearly uniform on mE5's anisotropic token states (row entropy 0.94 of
    # its maximum, cost 1 − cos spread 0.266 ± 0.064 on ha-en bitext): a sharper ε aligns tokens
    "ot-sharp+sent": replace(OT, w_sent=1.0, epsilon=0.005, iterations=100),
    "ot-sharp-idf+sent": replace(OT, w_sent=1.0, epsilon=0.005, iterations=100, marginals="idf"),
    "ot-sharp": replace(OT, epsilon=0.005, iterations=100),
    "ot0.3-sharp+sent": replace(OT, w_ot=0.3, w_sent=1.0, epsilon=0.005, iterations=100),
    # the same plan on states centred by the batch's mean teacher token state (run with --steps 300)
    "ot-center+sent": replace(OT, w_sent=1.0, epsilon=0.005, iterations=100, center=True),
    "ot-idf": replace(OT, marginals="idf"),
    "ot-lr2e-5+sent": replace(OT, w_sent=1.0, lr=2e-5),
    "ot-top6+sent": replace(OT, w_sent=1.0, freeze_layers=6),
    "ot0.3+sent": replace(OT, w_ot=0.3, w_sent=1.0),
    "ot-idf-unbal+sent": replace(OT, w_sent=1.0, marginals="idf", tau=0.1),
    "ot-minilm+sent": replace(OT, w_sent=1.0, teacher="all-minilm-l6-v2", teacher_prefix=""),
    # issue 14: how many lower layers of the student can stay frozen (cheaper steps, the teacher cached)
    # without costing MAP; the rule that picks one is in benchmarks/results/optical_tuning/RULES.md
    "optical": OPTICAL_300,
    "optical-freeze3": replace(OPTICAL_300, freeze_layers=3),
    "optical-freeze6": replace(OPTICAL_300, freeze_layers=6),
    # the same rule for the sentence-level ablation, at the recipes' shared budget
    "sdistill-freeze3": replace(SDISTILL_300, freeze_layers=3),
    "sdistill-freeze6": replace(SDISTILL_300, freeze_layers=6),
}
# issue 21, the budget in epochs (RULES.md, 2026-12-06): `optical` at the chosen freeze (3), one training
# per budget; its steps are ceil(epochs * ceil(pairs / batch)) of the tuning pair's cleaned bitext
BUDGETS = {f"optical-freeze3-e{epochs:g}": (replace(OPTICAL_300, freeze_layers=3), epochs)
           for epochs in (0.5, 1, 2, 4, 8)}
# issue 21, the open variants (RULES.md, 2026-12-06): each one change to `optical` at the chosen freeze (3) and
# budget (STUDY_EPOCHS, chosen by the budget rule over rows 13-20 of QUEUE.md); the base itself is the budget row
STUDY_EPOCHS = 1
STUDY = {
    "idf": {"marginals": "idf"},
    "unbal0.1": {"tau": 0.1},
    "unbal1": {"tau": 1.0},
    "ot0.3": {"w_ot": 0.3},
    "ot3": {"w_ot": 3.0},
    "anchor": {"anchor": 0.01},
    "minilm": {"teacher": "all-minilm-l6-v2", "teacher_prefix": ""},  # documents then encoded by MiniLM
    "maxsim-plan": {"plan": "maxsim"},
}
BUDGETS.update({f"optical-freeze3-e{STUDY_EPOCHS:g}+{name}": (replace(OPTICAL_300, freeze_layers=3, **change),
                                                                STUDY_EPOCHS) for name, change in STUDY.items()})
# issue 22's sweep confound (benchmarks/results/QUEUE.md item 2d): the final recipes, and each with the other's
# frozen prefix, to train with --noise on a tuning pair; the OT term's share of `optical`'s robustness to misaligned
# pairs is the difference between the freeze-matched rows
FINAL = {"optical-final": OPTICAL, "optical-final-freeze0": replace(OPTICAL, freeze_layers=0),
         "sdistill-final": SDISTILL, "sdistill-final-freeze3": replace(SDISTILL, freeze_layers=3)}
FIELDS = ("pair", "variant", "scoring", "AP", "nDCG@10", "RR@10", "train_s", "peak_rss_mb", "checkpoint", "config")


def score(pair, query_spec: str, doc_spec: str, scoring: str) -> dict:
    """MAP, nDCG@10 and RR@10 of ``pair``: queries encoded by ``query_spec``, documents by ``doc_spec``."""
    collection = pair.collection()
    queries = [(q.query_id, q.text) for q in collection.queries]
    run, _ = dense.retrieve(collection, query_spec, doc_spec, queries, scoring=scoring)
    return means(per_query(run, collection.qrels, ["AP", "nDCG@10", "RR@10"]))


def budgeted(pair, config, epochs: float):
    """``config`` with the steps of ``epochs`` passes over ``pair``'s cleaned bitext at its batch size (no cap)."""
    from bench.data.bitext import load_bitext

    return in_steps(replace(config, epochs=epochs, steps=sys.maxsize), len(load_bitext(pair).pairs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pair")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="names of VARIANTS, BUDGETS (the budget rows and the variants study) or FINAL (the "
                        "final recipes and their frozen-prefix swaps)")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="train on the bitext with this fraction of its pairs misaligned (bench's seeded "
                        "corruption, as `bench sweep noise`); rows are named <variant>+noise<rate>")
    parser.add_argument("--steps", type=int, help="override the step budget; rows are named <variant>@<steps>")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pair = get_pair(args.pair)
    if not pair.tuning:
        raise SystemExit(f"{pair.name} is a test collection: tune on ha-en-dev or yo-en-train")
    named = {**VARIANTS, **FINAL}  # a recipe each (None: the zero-shot encoder); BUDGETS are budgeted per pair
    unknown = sorted(set(args.variants.split(",")) - {*named, *BUDGETS})
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}: see VARIANTS, BUDGETS and FINAL in {__file__}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    new = not args.out.exists()
    with open(args.out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for name in args.variants.split(","):
            config = budgeted(pair, *BUDGETS[name]) if name in BUDGETS else named[name]
            if config is not None and args.steps:
                config = replace(config, steps=args.steps)
            started = time.perf_counter()
            query_spec = DEFAULT_ENCODER if config is None else str(trained_student(pair, config, noise=args.noise)[0])
            seconds = time.perf_counter() - started
            if config is not None:
                meta = json.loads((Path(query_spec) / "optical.json").read_text())
                seconds = meta.get("seconds_last_session", seconds)
            # the documents are encoded by the teacher, as bench's distilled systems encode them
            doc_spec = DEFAULT_ENCODER if config is None else config.teacher
            recipe = describe(replace(config, noise=args.noise)) if config else {}
            label = name
            if config is not None:  # the zero-shot encoder trains nothing: no steps, no noise
                label += (f"@{args.steps}" if args.steps else "") + (f"+noise{args.noise:g}" if args.noise else "")
            for scoring in ("mean", "maxsim"):
                m = score(pair, query_spec, doc_spec, scoring)
                row = {"pair": pair.name, "variant": label, "scoring": scoring, **{k: round(m[k], 4) for k in
                       ("AP", "nDCG@10", "RR@10")}, "train_s": round(seconds), "checkpoint": Path(query_spec).name,
                       "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                       "config": json.dumps(recipe, sort_keys=True)}
                writer.writerow(row)
                f.flush()
                print("\t".join(str(row[k]) for k in FIELDS[:8]), flush=True)


if __name__ == "__main__":
    main()
