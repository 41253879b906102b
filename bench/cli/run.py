"""``bench run`` and ``bench eval``: a run plan executed, runs made elsewhere stored; the table on the terminal."""

from __future__ import annotations

import time
from pathlib import Path

import click

from bench.cli.common import LOG_STATE, LONG_RUN_S, check_dirs, echo_means, option_flags, pair_given
from bench.errors import BenchError



@click.command("run")
@click.option("--pair", "pair_name", help="A built-in pair, e.g. sw-en (see `bench pairs`).")
@click.option("--pair-file", type=click.Path(path_type=Path), help="A pair defined in a YAML/TOML file.")
@click.option("--systems", "systems_list", help="Comma-separated systems (default: every system that applies).")
@click.option("--depth", default=1000, show_default=True, help="Documents retrieved per query.")
@click.option("--seed", default=0, show_default=True, help="Seed of everything random.")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Where runs are stored (runs/<pair>/<system>/).")
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="Where reports are written.")
@click.option("--no-report", is_flag=True, help="Write the runs only.")
@click.option("--run", "external_runs", multiple=True, metavar="NAME=PATH",
              help="Also score a TREC run made elsewhere and store it as system NAME (repeatable).")
@option_flags()
@click.option("--measures", metavar="NAMES", help="Comma-separated ir_measures names (e.g. AP,nDCG@20,R@100) "
              "instead of the pair's.")
@click.option("--baseline", metavar="SYSTEM", help="The report's baseline (default: bm25).")
@click.option("--dry-run", is_flag=True, help="Check everything, print the plan (systems, stored runs reused, what "
              "is built or trained and for about how long) and stop.")
@click.option("--force", is_flag=True, help="Run every system again, even one whose stored run has identical inputs.")
def run_cmd(pair_name, pair_file, systems_list, depth, seed, runs_root, reports_dir, no_report, external_runs=(),
            measures=None, baseline=None, dry_run=False, force=False, **option_values) -> None:
    """Run systems on a pair, score them with ir-measures, and write runs and a report. A system whose stored
    run was made from identical inputs (spec, options, depth, measures, seed, the collection's, bitext's and
    models' fingerprints, bench's version) is reused, not run again, unless --force."""
    from bench.experiment.plan import plan_run

    if option_values.get("profile") == "ci" and not pair_name and not pair_file:
        pair_name = "sw-en"  # the ci profile is the regression check on sw-en
    check_dirs(("--runs", runs_root, True), ("--reports", None if no_report else reports_dir, True))
    pair = pair_given(pair_name, pair_file)
    if baseline is not None and no_report:
        raise BenchError("--baseline is the report's baseline, and --no-report writes no report", "drop one of them")
    started = time.perf_counter()
    plan = plan_run(pair, systems_list, options=option_values, depth=depth, seed=seed, measures=measures,
                    runs=runs_root, reports=None if no_report else reports_dir, baseline=baseline,
                    external=external_runs, fetch=not dry_run, force=force)
    if dry_run:
        for line in plan.describe():
            click.echo(line)
        click.echo("nothing was run (--dry-run)")
        return
    quiet = click.get_current_context().meta.get(LOG_STATE, {}).get("quiet", False)
    if not quiet and plan.estimate.seconds > LONG_RUN_S:  # hours ahead: say what they are spent on first
        for line in plan.describe():
            click.echo(line, err=True)
    echo_means(plan.pair.name, plan.execute())
    for path in plan.write_report():
        click.echo(f"wrote {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f} s")


@click.command("eval")
@click.option("--pair", "pair_name", help="A built-in pair, e.g. sw-en (see `bench pairs`).")
@click.option("--pair-file", type=click.Path(path_type=Path), help="A pair defined in a YAML/TOML file.")
@click.option("--run", "external_runs", multiple=True, metavar="NAME=PATH",
              help="A run made elsewhere (TREC or MS MARCO, plain or gzip), stored as system NAME (repeatable).")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Where runs are stored (runs/<pair>/<system>/).")
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="Where reports are written.")
@click.option("--no-report", is_flag=True, help="Write the runs only.")
@click.option("--measures", metavar="NAMES", help="Comma-separated ir_measures names (e.g. AP,nDCG@20,R@100) "
              "instead of the pair's; the report shows them for every run (computed from run.trec where a run "
              "was stored without one, for the report only).")
def eval_cmd(pair_name, pair_file, external_runs, runs_root, reports_dir, no_report, measures=None) -> None:
    """Score runs made elsewhere (TREC or MS MARCO files, plain or gzip) and store them beside bench's own runs."""
    from bench.experiment import external
    from bench.experiment.plan import measure_names

    if not external_runs:
        raise BenchError("give at least one --run NAME=PATH", "e.g. bench eval --pair sw-en --run mine=run.trec")
    from bench.data.pair_ref import resolve_pair

    chosen = measure_names(measures)  # checked before any work
    pair = resolve_pair(pair_given(pair_name, pair_file))
    results = external.add_runs(pair, external_runs, runs_root, chosen)
    echo_means(pair.name, results)
    if not no_report:
        from bench.experiment.reporting import write_report

        for path in write_report(pair.name, runs_root, reports_dir, given=pair, measures=chosen):
            click.echo(f"wrote {path}")
