"""``bench report`` and ``bench check``: reports rebuilt from the stored runs (narrowed to chosen pairs, systems,
baseline and measures, in the formats asked for), the regression check."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bench.errors import BenchError, did_you_mean
from bench.cli.common import check_dirs
from bench.results.report.files import DEFAULT_FORMATS, FORMATS, report_formats


@click.command("report")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Where runs are stored (runs/<pair>/<system>/).")
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="Where reports are written.")
@click.option("--pair", "pair_names", multiple=True, metavar="PAIR",
              help="Only this pair's report (repeatable; default: every pair with runs).")
@click.option("--pair-file", type=click.Path(path_type=Path),
              help="A user's pair (YAML/TOML): its report, and its qrels to score its runs with --measures.")
@click.option("--systems", "systems_list", metavar="NAMES",
              help="Comma-separated systems to report (their runs only: Holm's family is theirs).")
@click.option("--baseline", metavar="SYSTEM", help="The run every other is tested against (default: bm25, else the "
              "first system).")
@click.option("--measures", metavar="NAMES", help="Comma-separated ir_measures names, in the tables' order (the "
              "first is the primary); a measure a run was not stored with is computed from its run.trec and the "
              "pair's qrels, for the report only.")
@click.option("--format", "formats", metavar="FORMATS", default=",".join(DEFAULT_FORMATS), show_default=True,
              help="Comma-separated: " + ", ".join(FORMATS) + " (latex: <pair>.tex; csv: the summary table, "
              "<pair>.summary.csv).")
def report_cmd(runs_root: Path, reports_dir: Path, pair_names: tuple[str, ...] = (), pair_file: Path | None = None,
               systems_list: str | None = None, baseline: str | None = None, measures: str | None = None,
               formats: str = ",".join(DEFAULT_FORMATS)) -> None:
    """Rebuild the pairs' reports and the leaderboard from the stored runs (with --pair, --systems, --baseline or
    --measures: those pair reports only, the leaderboard as it was)."""
    from bench.experiment.plan import measure_names
    from bench.experiment.documents import documents_loader
    from bench.experiment.qrels import qrels_loader
    from bench.results.report import pair_report_files, write_leaderboard, write_texts
    from bench.results.runs import load_runs

    check_dirs(("--runs", runs_root, False), ("--reports", reports_dir, True))
    chosen_formats = report_formats(formats)
    chosen_measures = measure_names(measures)  # checked before any work
    systems = _names(systems_list, "--systems")
    if baseline is not None and systems is not None and baseline not in systems:
        raise BenchError(f"--baseline {baseline} is not among --systems ({', '.join(systems)})",
                         "add it to --systems, or choose one of them as the baseline")
    given = None
    if pair_file is not None:
        from bench.data.pair_ref import resolve_pair

        given = resolve_pair(pair_file)
    loader, documents = qrels_loader(given), documents_loader(given)

    def qrels_of(run):  # a run without file hashes is read only once its values derive again on them
        return loader(run.pair, [run])

    runs = load_runs(runs_root, qrels=qrels_of)
    if not runs:
        raise BenchError(f"no complete runs under {runs_root}", "run `bench run --pair sw-en` first")
    pairs = _pairs(runs, [*pair_names, *([given.name] if given else [])], runs_root)
    if systems is not None:
        _check_known(systems, runs, pairs, runs_root)
    paths, contents = [], []  # every report made before the first is written
    for pair in pairs:
        here = {r.system for r in runs if r.pair == pair}
        chosen = None if systems is None else [s for s in systems if s in here]
        if chosen is not None and not chosen:
            click.echo(f"{pair}: none of --systems has a run; no report")
            continue
        made = pair_report_files(pair, runs_root, reports_dir, baseline, systems=chosen, measures=chosen_measures,
                                 qrels=loader, documents=documents, formats=chosen_formats)
        paths += made[0]
        contents += made[1]
    write_texts(paths, contents)
    for path in paths:
        click.echo(f"wrote {path}")
    if pair_names or pair_file or systems is not None or baseline is not None or chosen_measures is not None:
        click.echo("leaderboard left as it was: --pair, --pair-file, --systems, --baseline and --measures choose "
                   "pair reports only")
        return
    for path in write_leaderboard(runs_root, reports_dir, qrels=qrels_of):
        click.echo(f"wrote {path}")


def _names(value: str | None, flag: str) -> list[str] | None:
    """The names of a comma-separated list, without repeats (None when not given)."""
    if value is None:
        return None
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise BenchError(f"{flag} {value!r} names nothing", f"e.g. {flag} bm25,optical")
    return names


def _pairs(runs, asked: list[str], runs_root: Path) -> list[str]:
    """The pairs to report: those asked for (each must have runs), else every pair with runs."""
    stored = sorted({r.pair for r in runs})
    for pair in asked:
        if pair not in stored:
            raise BenchError(f"no complete run of pair {pair} under {runs_root}",
                             did_you_mean(pair, stored, "pairs with runs: " + ", ".join(stored)))
    return list(dict.fromkeys(asked)) or stored


def _check_known(systems: list[str], runs, pairs: list[str], runs_root: Path) -> None:
    """Each of ``systems`` has a run on at least one of ``pairs``."""
    known = sorted({r.system for r in runs if r.pair in pairs})
    for name in systems:
        if name not in known:
            raise BenchError(f"no run of system {name!r} on {', '.join(pairs)} under {runs_root}",
                             did_you_mean(name, known, "systems with runs: " + ", ".join(known)))


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
