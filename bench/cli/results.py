"""``bench report`` and ``bench check``: reports rebuilt from the stored runs, the regression check."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bench.errors import BenchError
from bench.cli.common import check_dirs


@click.command("report")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Where runs are stored (runs/<pair>/<system>/).")
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="Where reports are written.")
def report_cmd(runs_root: Path, reports_dir: Path) -> None:
    """Rebuild every pair's report and the leaderboard from the stored runs."""
    from bench.results.report import write_leaderboard, write_pair_report
    from bench.results.runs import load_runs

    check_dirs(("--runs", runs_root, False), ("--reports", reports_dir, True))
    pairs = sorted({r.pair for r in load_runs(runs_root)})
    if not pairs:
        raise BenchError(f"no complete runs under {runs_root}", "run `bench run --pair sw-en` first")
    for pair in pairs:
        for path in write_pair_report(pair, runs_root, reports_dir):
            click.echo(f"wrote {path}")
    for path in write_leaderboard(runs_root, reports_dir):
        click.echo(f"wrote {path}")


@click.command("check")
@click.option("--expected", "expected_path", default="reports/expected.yaml", show_default=True,
              type=click.Path(path_type=Path), help="Expected scores (pair -> system -> measure).")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--update", is_flag=True, help="Rewrite the expected scores from the runs (review the diff).")
@click.option("--pair", "pairs", multiple=True, help="With --update: only these pairs.")
@click.option("--systems", "systems_list", help="Comma-separated systems to check (a missing run is a FAIL); "
              "default: the (pair, system) rows that have a run under --runs, the others SKIP.")
def check_cmd(expected_path: Path, runs_root: Path, update: bool, pairs: tuple[str, ...],
              systems_list: str | None = None) -> None:
    """Compare the latest runs with the expected scores: OK, OKISH, FAIL or SKIP per row; exit 1 on any FAIL
    or when no row was checked."""
    from bench.results import regress

    check_dirs(("--runs", runs_root, False), ("--expected", expected_path.parent if update else None, True))
    if update:
        changes = regress.update(expected_path, runs_root, pairs=list(pairs) or None)
        for c in changes:
            old = "new" if c.old is None else f"{c.old:.4f}"
            click.echo(f"{c.pair}  {c.system}  {c.measure}: {old} -> {c.new:.4f}")
        click.echo(f"{expected_path}: {len(changes)} rows changed")
        return
    systems = None if systems_list is None else [s.strip() for s in systems_list.split(",") if s.strip()]
    from bench.data.pairs import PAIRS
    from bench.systems import SYSTEMS, load_plugins

    load_plugins()
    verdicts = regress.check(expected_path, runs_root, systems=systems, known_pairs=PAIRS, known_systems=SYSTEMS)
    for v in verdicts:  # the checked rows, one line each; the skipped ones in one line
        if v.status != regress.SKIP:
            click.echo(v.line())
    skipped = regress.skipped_line(verdicts)
    if skipped:
        click.echo(skipped)
    click.echo(regress.summary(verdicts) + "; a row FAILs when worse than expected by more than its tolerance")
    code = regress.exit_code(verdicts)
    if code:
        sys.exit(code)
