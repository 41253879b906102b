"""``bench grid``: pairs × systems × seeds × noise rates, in this process or on Ray
(:mod:`bench.experiment.grid`)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from bench.cli.common import LOG_STATE, LONG_RUN_S, option_flags
from bench.errors import BenchError


@click.command("grid")
@click.option("--file", "grid_file", type=click.Path(path_type=Path, dir_okay=False),
              help="A YAML grid file with the keys of these flags (pairs, pair_files, systems, seeds, noise, ray, "
                   "max_parallel, shards, retries, runs, reports, depth, measures, no_report, options); flags given "
                   "as well override it. Its paths are relative to it.")
@click.option("--pairs", help="Comma-separated pairs: built-in names (bench pairs) or pair files.")
@click.option("--pair-file", "pair_files", multiple=True, type=click.Path(path_type=Path),
              help="A pair defined in a YAML/TOML file (repeatable).")
@click.option("--systems", "systems_list",
              help="Comma-separated systems (default: every system that applies to a pair).")
@click.option("--seeds", help="Comma-separated seeds (default 0): they multiply the systems that train or read "
              "noised bitext.")
@click.option("--noise", help="Comma-separated bitext noise rates (default 0): they multiply the systems that read "
              "the bitext.")
@click.option("--ray", "ray_address", metavar="local|auto|ADDRESS",
              help="Run on Ray: a Ray on this machine (local), the cluster this machine belongs to (auto), or the "
                   "cluster at ADDRESS. Default: in this process, one task at a time.")
@click.option("--max-parallel", metavar="N", help="CPUs of a local Ray (default: this machine's).")
@click.option("--shards", metavar="N", help="Encode each corpus as N shard tasks (default 1).")
@click.option("--retries", metavar="N", help="Times Ray runs a task again whose worker died (default 1).")
@click.option("--depth", metavar="N", help="Documents retrieved per query (default 1000).")
@option_flags(exclude=("bitext_noise",))
@click.option("--measures", metavar="NAMES", help="Comma-separated ir_measures names instead of each pair's.")
@click.option("--runs", "runs_root", type=click.Path(path_type=Path), help="Where runs go (default: runs).")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path), help="Where reports go (default: reports).")
@click.option("--no-report", is_flag=True, default=None, help="Write the runs only.")
@click.option("--dry-run", is_flag=True, help="Check everything, print the plan (its cells and needs, what is built "
              "or trained and for about how long) and stop.")
@click.option("--force", is_flag=True, help="Run every cell again, even one whose stored run has identical inputs.")
def grid_cmd(grid_file, pairs, pair_files, systems_list, seeds, noise, ray_address, max_parallel, shards, retries,
             depth, measures, runs_root, reports_dir, no_report, dry_run, force=False, **option_values) -> None:
    """Run the experiment grid: every pair × system × seed × noise rate, each artifact built once; a cell whose
    stored run has identical inputs is reused (as by bench run), unless --force. Exits non-zero if a cell
    failed."""
    from bench.experiment.grid import grid_spec, load_grid_file, plan_grid
    from bench.experiment.grid_exec import run_plan, write_reports
    from bench.cli.common import check_dirs

    started = time.perf_counter()
    values = load_grid_file(grid_file) if grid_file else {}
    given = {"pairs": pairs, "pair_files": [p.resolve() for p in pair_files] or None, "systems": systems_list,
             "seeds": seeds, "noise": noise, "ray": ray_address, "max_parallel": max_parallel, "shards": shards,
             "retries": retries, "depth": depth, "measures": measures, "no_report": no_report,
             "runs": runs_root and runs_root.resolve(), "reports": reports_dir and reports_dir.resolve()}
    values.update({k: v for k, v in given.items() if v is not None})
    options = {**(values.get("options") or {}), **{k: v for k, v in option_values.items() if v is not None}}
    values["options"] = options
    spec = grid_spec(values, grid_file.parent.resolve() if grid_file else None)
    check_dirs(("--runs", spec.runs, True), ("--reports", None if spec.no_report else spec.reports, True))
    plan = plan_grid(spec, force=force)
    where = "in this process" if spec.ray is None else f"on Ray ({spec.ray})"
    click.echo(f"grid: {len(plan.cells)} cell(s) to run on {len(plan.pairs)} pair(s), {len(plan.needs)} artifact(s) "
               f"to build, {where}")
    for note in plan.notes:
        click.echo(f"  {note}")
    if dry_run:
        for task in plan.tasks():
            click.echo(f"  {'cell' if hasattr(task, 'run') else 'need'}  {task.label}")
        for line in plan.estimate.lines():
            click.echo(line)
        click.echo("nothing was run (--dry-run)")
        return
    result = None
    if not plan.cells:
        click.echo("nothing to run: every cell has a stored run with identical inputs")
    else:
        quiet = click.get_current_context().meta.get(LOG_STATE, {}).get("quiet", False)
        if not quiet and plan.estimate.seconds > LONG_RUN_S:  # hours ahead: say what they are spent on first
            for line in plan.estimate.lines():
                click.echo(line, err=True)
        result = run_plan(plan, ray=spec.ray, max_parallel=spec.max_parallel, retries=spec.retries, echo=click.echo,
                          quiet=quiet)
    if not spec.no_report:
        for path in write_reports(plan, result):
            click.echo(f"wrote {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f} s")
    failed = result.failed if result else []
    if failed:
        first = f"{failed[0].label}: {failed[0].error}"
        raise BenchError(f"{len(failed)} of {len(result.cells)} cells failed (first: {first})",
                         "fix them and run bench grid again: it runs only the cells without a stored run of "
                         "identical inputs")
