"""The ``bench`` command line: pairs, fetch, run, report, check.

Every expected failure is a :class:`BenchError`, printed as one line with a hint and a non-zero exit
code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import click

from bench.errors import BenchError

log = logging.getLogger("bench")

EXIT_ERROR = 2


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("urllib3", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    if not verbose:
        # ir_datasets logs each failed download attempt itself; offline, bench's one error line says it all
        import ir_datasets.util.download

        ir_datasets.util.download._logger.logger().setLevel(logging.ERROR)


@click.group()
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="bench")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, quiet: bool) -> None:
    """bench: cross-lingual retrieval benchmarks for low-resource languages."""
    ctx.obj = {"debug": debug}
    _setup_logging(verbose, quiet)


@cli.command("pairs")
def pairs_cmd() -> None:
    """List the pairs: languages, collection, sizes, and whether the data is available here."""
    from bench.pairs import all_pairs

    rows = [("pair", "queries", "docs", "collection", "#queries", "#docs", "data here", "note")]
    for p in all_pairs():
        rows.append((
            p.name, p.query_lang, p.doc_lang, p.dataset_id,
            str(p.expected_queries or "-"), str(p.expected_docs or "-"),
            "yes" if p.is_available() else ("no" if p.offline else "needs internet"),
            "tuning only" if p.tuning else ("low-resource" if p.low_resource else "high-resource"),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@cli.command("fetch")
@click.option("--pair", "pair_name", required=True, help="Pair whose data to fetch, e.g. sw-en.")
@click.option("--to", "to_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write the files as a mirror directory (for an air-gapped machine).")
def fetch_cmd(pair_name: str, to_dir: Path | None) -> None:
    """Fetch (and verify) every public file a pair needs."""
    from bench.pairs import get_pair, remote_files
    from bench.store import export_mirror, fetch

    pair = get_pair(pair_name)
    remotes = remote_files(pair)
    if not remotes:
        if to_dir:
            raise BenchError(f"{pair.name} is downloaded by ir_datasets ({pair.dataset_id}), not by bench",
                             "--to mirrors bench's own files; copy ~/.ir_datasets to the other machine instead")
        collection = pair.collection()  # ir_datasets downloads on first use
        click.echo(f"{pair.name}: {len(collection.queries)} queries, {collection.docs_count} documents")
        return
    for remote in remotes:
        fetch(remote)
    click.echo(f"{pair.name}: {len(remotes)} files verified (sha256) in {os.environ.get('BENCH_HOME') or '~/.cache/bench'}")
    if to_dir:
        export_mirror(remotes, to_dir)
        click.echo(f"mirror written to {to_dir} (use it with BENCH_MIRROR={to_dir})")


@cli.command("run")
@click.option("--pair", "pair_name", help="A built-in pair, e.g. sw-en (see `bench pairs`).")
@click.option("--pair-file", type=click.Path(path_type=Path), help="A pair defined in a YAML/TOML file.")
@click.option("--systems", "systems_list", help="Comma-separated systems (default: every system that applies).")
@click.option("--depth", default=1000, show_default=True, help="Documents retrieved per query.")
@click.option("--seed", default=0, show_default=True, help="Seed of everything random.")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path))
@click.option("--no-report", is_flag=True, help="Write the runs only.")
@click.option("--profile", type=click.Choice(["full", "ci"]), default="full", show_default=True,
              help="ci: every system on sw-en (unless --pair is given) with short training budgets.")
@click.option("--bitext-noise", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Fraction of the bitext replaced by misaligned pairs (seeded) for trained systems.")
def run_cmd(pair_name, pair_file, systems_list, depth, seed, runs_root, reports_dir, no_report, profile,
            bitext_noise) -> None:
    """Run systems on a pair, score them with ir-measures, and write runs and a report."""
    from bench.options import RunOptions
    from bench.runner import run_systems
    from bench.systems import default_systems, parse_systems

    if profile == "ci" and not pair_name and not pair_file:
        pair_name = "sw-en"
    pair = _resolve_pair(pair_name, pair_file)
    if depth < 1:
        raise BenchError(f"--depth must be positive, got {depth}", "e.g. --depth 1000")
    started = time.perf_counter()
    systems = parse_systems(systems_list)
    if systems is None and profile == "ci":
        from bench.systems import CI_SYSTEMS

        systems = parse_systems(",".join(CI_SYSTEMS))
    if systems is None:
        has_translations = all(q.translation for q in pair.collection().queries)
        systems = default_systems(has_translations, pair.doc_lang)
    options = RunOptions(profile=profile, bitext_noise=bitext_noise)
    if systems_list is not None:  # options the user set for systems that do not read them are mistakes
        _check_read(options, systems)
    results = run_systems(pair, systems, runs_root, depth=depth, seed=seed, options=options)
    _echo_table(pair.name, results)
    if not no_report:
        from bench.report import write_pair_report

        for path in write_pair_report(pair.name, runs_root, reports_dir):
            click.echo(f"wrote {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f} s")


def _check_read(options, systems) -> None:
    from bench.options import unread

    ignored = unread(options, [o for s in systems for o in s.reads])
    if ignored:
        raise BenchError(f"no chosen system reads the option {ignored[0]}",
                         "drop it, or choose a system that reads it (bench systems lists them)")


def _resolve_pair(pair_name: str | None, pair_file: Path | None):
    from bench.pairs import get_pair

    if bool(pair_name) == bool(pair_file):
        raise BenchError("give exactly one of --pair and --pair-file", "e.g. bench run --pair sw-en")
    if pair_file:
        from bench.collections.local import load_pair_file

        return load_pair_file(pair_file)
    return get_pair(pair_name)


def _echo_table(pair: str, results) -> None:
    if not results:
        return
    measures = list(results[0].means)
    width = max(len(r.system) for r in results)
    click.echo(f"\n{pair}")
    click.echo("system".ljust(width) + "".join(f"{m:>10}" for m in measures) + f"{'time (s)':>10}")
    for r in results:
        click.echo(r.system.ljust(width) + "".join(f"{r.means[m]:>10.4f}" for m in measures) + f"{r.wall_time_s:>10.1f}")


@cli.command("report")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path))
def report_cmd(runs_root: Path, reports_dir: Path) -> None:
    """Rebuild every pair's report and the leaderboard from the stored runs."""
    from bench.report import write_leaderboard, write_pair_report
    from bench.runs import load_runs

    pairs = sorted({r.pair for r in load_runs(runs_root)})
    if not pairs:
        raise BenchError(f"no complete runs under {runs_root}", "run `bench run --pair sw-en` first")
    for pair in pairs:
        for path in write_pair_report(pair, runs_root, reports_dir):
            click.echo(f"wrote {path}")
    for path in write_leaderboard(runs_root, reports_dir):
        click.echo(f"wrote {path}")


@cli.command("check")
@click.option("--expected", "expected_path", default="reports/expected.yaml", show_default=True,
              type=click.Path(path_type=Path), help="Expected scores (pair -> system -> measure).")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--update", is_flag=True, help="Rewrite the expected scores from the runs (review the diff).")
@click.option("--pair", "pairs", multiple=True, help="With --update: only these pairs.")
def check_cmd(expected_path: Path, runs_root: Path, update: bool, pairs: tuple[str, ...]) -> None:
    """Compare the latest runs with the expected scores: OK, OKISH or FAIL per row; exit 1 on any FAIL."""
    from bench import regress

    if update:
        changes = regress.update(expected_path, runs_root, pairs=list(pairs) or None)
        for c in changes:
            old = "new" if c.old is None else f"{c.old:.4f}"
            click.echo(f"{c.pair}  {c.system}  {c.measure}: {old} -> {c.new:.4f}")
        click.echo(f"{expected_path}: {len(changes)} rows changed")
        return
    verdicts = regress.check(expected_path, runs_root)
    for v in verdicts:
        click.echo(v.line())
    click.echo(regress.summary(verdicts))
    code = regress.exit_code(verdicts)
    if code:
        sys.exit(code)


@cli.group("train")
def train_group() -> None:
    """Train models on a pair's bitext (cached by fingerprint; an interrupted training resumes)."""


@train_group.command("mt")
@click.option("--pair", "pair_name", required=True, help="e.g. sw-en")
@click.option("--seed", default=0, show_default=True)
@click.option("--steps", type=click.IntRange(1), help="Training steps (default: MtConfig.max_steps).")
@click.option("--bitext-noise", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True)
def train_mt_cmd(pair_name: str, seed: int, steps: int | None, bitext_noise: float) -> None:
    """Train the pair's foreign→English translation model (used by bm25-nmt and nmt-dense)."""
    from bench.pairs import get_pair
    from bench.translate.mt_train import train_mt

    config = {"max_steps": steps} if steps else {}
    click.echo(f"model: {train_mt(get_pair(pair_name), config=config, noise=bitext_noise, seed=seed)}")


@train_group.command("optical")
@click.option("--pair", "pair_name", required=True, help="e.g. sw-en")
@click.option("--seed", default=0, show_default=True)
@click.option("--steps", type=click.IntRange(1), help="Training steps (default: the recipe's).")
@click.option("--sentence-only", is_flag=True, help="The sdistill ablation: the sentence-level term alone.")
@click.option("--bitext-noise", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True)
def train_optical_cmd(pair_name: str, seed: int, steps: int | None, sentence_only: bool, bitext_noise: float) -> None:
    """Distil the multilingual student from the English teacher on the pair's bitext (the recipe of the
    `optical` system, or of `sdistill` with --sentence-only)."""
    from dataclasses import replace

    from bench.distill.recipes import RECIPES, trained_student
    from bench.pairs import get_pair

    config = RECIPES["sdistill" if sentence_only else "optical"]
    if steps:
        config = replace(config, steps=steps)
    checkpoint, _ = trained_student(get_pair(pair_name), config, noise=bitext_noise, seed=seed)
    click.echo(f"checkpoint: {checkpoint}")


@cli.group("sweep")
def sweep_group() -> None:
    """Run systems across a range of a setting and tabulate and plot the effect."""


@sweep_group.command("noise")
@click.option("--pair", "pair_name", required=True, help="e.g. sw-en")
@click.option("--rates", default="0,0.2,0.4", show_default=True, help="Fractions of misaligned bitext pairs.")
@click.option("--systems", "systems_list", help="Comma-separated trained systems (default: every system that "
              "learns from the bitext).")
@click.option("--steps", type=click.IntRange(1), help="Training steps of the distilled students (default: the recipe's).")
@click.option("--seed", default=0, show_default=True)
@click.option("--runs", "runs_root", default="runs/sweep-noise", show_default=True, type=click.Path(path_type=Path))
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path))
def sweep_noise_cmd(pair_name, rates, systems_list, steps, seed, runs_root, reports_dir) -> None:
    """Retrain every trained system at each noise rate; write <pair>.noise.{csv,md,png}."""
    from bench.options import RunOptions
    from bench.sweep import default_systems, noise_sweep, parse_rates

    rate_list = parse_rates(rates)
    pair = _resolve_pair(pair_name, None)
    systems, references = default_systems(systems_list)
    options = RunOptions(distill_steps=steps)
    started = time.perf_counter()
    for path in noise_sweep(pair, rate_list, systems, references, runs_root, reports_dir, seed=seed, options=options):
        click.echo(f"wrote {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f} s")


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM (``kill``, a job scheduler's timeout) like Ctrl-C: the stack unwinds, so the
    artifact being built removes its temporary directory instead of leaving it behind."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def main() -> None:
    """Console entry point: one line per error, non-zero exit, traceback only with --debug."""
    debug = "--debug" in sys.argv[1:]
    _interrupt_on_sigterm()
    try:
        cli.main(standalone_mode=False)
    except BenchError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted: finished runs are kept, unfinished ones left nothing behind", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # a bug, not bad input: say so in one line, traceback with --debug
        if debug:
            raise
        click.echo(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
        sys.exit(1)
