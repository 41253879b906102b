"""``bench fuse``: stored runs of a pair fused (RRF or CombSUM) into a new run, stored and reported like any system."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.common import check_dirs, echo_means, pair_given


@click.command("fuse")
@click.option("--pair", "pair_name", help="A built-in pair, e.g. sw-en (see `bench pairs`).")
@click.option("--pair-file", type=click.Path(path_type=Path), help="A pair defined in a YAML/TOML file.")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Where runs are stored (runs/<pair>/<system>/): the inputs, and the fused run.")
@click.option("--inputs", required=True, metavar="RUN,RUN[,...]",
              help="Comma-separated stored runs of the pair (bench's systems, external runs, fused runs).")
@click.option("--method", required=True, type=click.Choice(["rrf", "combsum"]),
              help="rrf: sum of w / (k + rank); combsum: sum of w x the min-max normalised score.")
@click.option("--weights", metavar="W,W[,...]", help="One weight per input, in their order (default: 1 each).")
@click.option("--rrf-k", metavar="K", help="The RRF constant k (rrf only).  [default: 60]")
@click.option("--name", metavar="NAME", help="The fused run's system name (default: METHOD-INPUT-INPUT...).")
@click.option("--depth", default="1000", show_default=True, metavar="N", help="Documents kept per query.")
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="Where reports are written.")
@click.option("--no-report", is_flag=True, help="Write the run only.")
def fuse_cmd(pair_name, pair_file, runs_root, inputs, method, weights, rrf_k, name, depth, reports_dir,
             no_report) -> None:
    """Fuse stored runs of a pair into a new run, scored and stored like any system."""
    from bench.data.pair_ref import resolve_pair
    from bench.experiment.fuse import plan_fusion

    check_dirs(("--runs", runs_root, True), ("--reports", None if no_report else reports_dir, True))
    pair = resolve_pair(pair_given(pair_name, pair_file))
    plan = plan_fusion(pair, runs_root, inputs, method, weights=weights, k=rrf_k, name=name, depth=depth)
    echo_means(pair.name, [plan.execute()])
    if not no_report:
        from bench.experiment.reporting import write_report

        for path in write_report(pair.name, runs_root, reports_dir, given=pair):
            click.echo(f"wrote {path}")
