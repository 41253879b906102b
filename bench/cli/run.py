"""``bench run`` and ``bench eval``: a run plan executed, runs made elsewhere stored; the table on the terminal."""

from __future__ import annotations

import time
from pathlib import Path

import click

from bench.cli.common import option_flags
from bench.errors import BenchError
from bench.cli.common import check_dirs


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
@click.option("--dry-run", is_flag=True, help="Check everything, print the plan (systems, what is built or trained) "
              "and stop.")
def run_cmd(pair_name, pair_file, systems_list, depth, seed, runs_root, reports_dir, no_report, external_runs=(),
            measures=None, baseline=None, dry_run=False, **option_values) -> None:
    """Run systems on a pair, score them with ir-measures, and write runs and a report."""
    from bench.experiment.plan import plan_run

    if option_values.get("profile") == "ci" and not pair_name and not pair_file:
        pair_name = "sw-en"  # the ci profile is the regression check on sw-en
    check_dirs(("--runs", runs_root, True), ("--reports", None if no_report else reports_dir, True))
    pair = _pair_given(pair_name, pair_file)
    if baseline is not None and no_report:
        raise BenchError("--baseline is the report's baseline, and --no-report writes no report", "drop one of them")
    started = time.perf_counter()
    plan = plan_run(pair, systems_list, options=option_values, depth=depth, seed=seed, measures=measures,
                    runs=runs_root, reports=None if no_report else reports_dir, baseline=baseline,
                    external=external_runs, fetch=not dry_run)
    if dry_run:
        for line in plan.describe():
            click.echo(line)
        click.echo("nothing was run (--dry-run)")
        return
    _echo_table(plan.pair.name, plan.execute())
    for path in plan.write_report():
        click.echo(f"wrote {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f} s")


def _pair_given(pair_name: str | None, pair_file: Path | None) -> str | Path:
    """The pair of ``--pair`` or ``--pair-file`` (exactly one of them)."""
    if bool(pair_name) == bool(pair_file):
        raise BenchError("give exactly one of --pair and --pair-file", "e.g. bench run --pair sw-en")
    return Path(pair_file) if pair_file else pair_name


def _echo_table(pair: str, results) -> None:
    """The runs' means in the order and names of the report's tables (``MAP`` for ir_measures' ``AP``)."""
    from bench.results.report import label
    from bench.systems import place

    if not results:
        return
    results = sorted(results, key=lambda r: (place(r.system), r.system))
    measures = list(dict.fromkeys(m for r in results for m in r.means))
    width = max(len(r.system) for r in results)
    click.echo(f"\n{pair}")
    click.echo("system".ljust(width) + "".join(f"{label(m):>10}" for m in measures) + f"{'time (s)':>10}")
    for r in results:
        scores = "".join(f"{r.means[m]:>10.4f}" if m in r.means else f"{'—':>10}" for m in measures)
        click.echo(r.system.ljust(width) + scores + f"{r.wall_time_s:>10.1f}")


@click.command("eval")
@click.option("--pair", "pair_name", help="A built-in pair, e.g. sw-en (see `bench pairs`).")
@click.option("--pair-file", type=click.Path(path_type=Path), help="A pair defined in a YAML/TOML file.")
@click.option("--run", "external_runs", multiple=True, metavar="NAME=PATH",
              help="A TREC run made elsewhere, stored as system NAME (repeatable).")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Where runs are stored (runs/<pair>/<system>/).")
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="Where reports are written.")
@click.option("--no-report", is_flag=True, help="Write the runs only.")
def eval_cmd(pair_name, pair_file, external_runs, runs_root, reports_dir, no_report) -> None:
    """Score TREC runs made elsewhere with ir-measures and store them beside bench's own runs."""
    from bench.experiment import external

    if not external_runs:
        raise BenchError("give at least one --run NAME=PATH", "e.g. bench eval --pair sw-en --run mine=run.trec")
    from bench.data.pair_ref import resolve_pair

    pair = resolve_pair(_pair_given(pair_name, pair_file))
    results = external.add_runs(pair, external_runs, runs_root)
    _echo_table(pair.name, results)
    if not no_report:
        from bench.results.report import write_pair_report

        for path in write_pair_report(pair.name, runs_root, reports_dir):
            click.echo(f"wrote {path}")
