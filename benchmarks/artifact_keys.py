"""Every artifact a `bench run` plans to build, by key: to show a change keeps the caches valid.

    BENCH_MIRROR=../shared/mirror python benchmarks/artifact_keys.py --pair sw-en [--profile ci] > keys.txt

For each system the run would run (every system that applies to the pair, or the ``ci`` profile's), one
line per cached artifact its run builds: the need's kind and identity (the grid's key: what determines
the artifact), and for a distilled student also the directory of its checkpoint under ``BENCH_HOME``
(the trainer's fingerprint of configuration, bitext and models), so ``diff`` of the output of two trees
says whether any cached student, MT model, table, index or encoding would be built again. Nothing is
built but the packaged models' conversion (needed for their fingerprints). It runs on trees from
before the systems became declarations (bench.needs) and after (bench.systems.stages).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging

# a tree from before issue 24 has the flat modules (bench.needs, bench.plan, ...)
FLAT = importlib.util.find_spec("bench.needs") is not None


def needs_by_system(pair_name: str, profile: str) -> dict[str, list]:
    if not FLAT:  # after issue 24: the needs derive from each system's declaration
        from bench.data.pair_ref import resolve_pair
        from bench.experiment.plan import choose_systems
        from bench.systems import Job
        from bench.systems.options import RunOptions

        pair = resolve_pair(pair_name)
        options = RunOptions(profile=profile)
        return {s.name: s.needs(Job(pair, pair_name, options, 0)) for s in choose_systems(pair, None, options)}
    else:  # before: bench.needs branched on the systems' spec strings
        from bench.needs import needs_of
        from bench.options import RunOptions
        from bench.plan import choose_systems, resolve_pair

        pair = resolve_pair(pair_name)
        options = RunOptions(profile=profile)
        return {s.name: needs_of(s, options, 0, pair, pair_name) for s in choose_systems(pair, None, options)}


def checkpoint_name(pair_name: str, need) -> str:
    """The checkpoint directory a student need's configuration trains into."""
    if not FLAT:
        from bench.data.bitext import load_bitext
        from bench.data.models import resolve
        from bench.data.pair_ref import resolve_pair
        from bench.methods.distill.trainer import checkpoint_dir
    else:
        from bench.bitext import load_bitext
        from bench.distill.trainer import checkpoint_dir
        from bench.models import resolve
        from bench.plan import resolve_pair

    _, config, noise, seed = need.args
    bitext = load_bitext(resolve_pair(pair_name), noise=noise, seed=seed)
    return checkpoint_dir(config, bitext.fingerprint, resolve(config.teacher).fingerprint,
                          resolve(config.student).fingerprint).name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pair", default="sw-en")
    parser.add_argument("--profile", default="full", choices=["full", "ci"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for system, needs in needs_by_system(args.pair, args.profile).items():
        for need in needs:
            line = f"{system}\t{need.kind}\t{json.dumps(need.identity, default=str)}"
            if need.kind == "student":
                line += f"\tcheckpoint {checkpoint_name(args.pair, need)}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
