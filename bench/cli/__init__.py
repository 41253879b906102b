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

from bench.cli.common import LOG_STATE, RUN_OPTION_FLAGS, SETUP_LOGGING, BenchGroup, option_flags
from bench.errors import BenchError
from bench.infra.store import check_dirs

log = logging.getLogger("bench")

EXIT_ERROR = 2


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet or not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(level)  # again: -q/-v after the command name set the level a second time
    for noisy in ("urllib3", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # ir_datasets logs each failed download attempt itself; offline, bench's one error line says it all
    import ir_datasets.util.download

    ir_datasets.util.download._logger.logger().setLevel(logging.NOTSET if verbose else logging.ERROR)


@click.group(cls=BenchGroup)
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.option("-v", "--verbose", count=True, help="Progress logs (-v: INFO, -vv: DEBUG; default: warnings only).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="bench")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, quiet: bool) -> None:
    """bench: cross-lingual retrieval benchmarks for low-resource languages."""
    ctx.obj = {"debug": debug}
    ctx.meta[LOG_STATE] = {"debug": debug, "verbose": verbose, "quiet": quiet}  # -q/-v/--debug after a command add up
    ctx.meta[SETUP_LOGGING] = _setup_logging
    _setup_logging(verbose, quiet)


@cli.command("pairs")
def pairs_cmd() -> None:
    """List the pairs: languages, collection, sizes, and whether the data is available here."""
    from bench.data.pairs import all_pairs

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
    from bench.data.pairs import get_pair, remote_files
    from bench.infra.store import export_mirror, fetch

    pair = get_pair(pair_name)
    remotes = remote_files(pair)
    if not remotes:
        if to_dir:
            raise BenchError(f"{pair.name} is downloaded by ir_datasets ({pair.dataset_id}), not by bench",
                             "--to mirrors bench's own files; copy ~/.ir_datasets to the other machine instead")
        collection = pair.collection()  # ir_datasets downloads on first use
        click.echo(f"{pair.name}: {len(collection.queries)} queries, {collection.docs_count} documents")
        return
    check_dirs(("--to", to_dir, True))
    for remote in remotes:
        fetch(remote, rehash=True)  # `bench fetch` hashes every cached file again
    click.echo(f"{pair.name}: {len(remotes)} files verified (sha256) in {os.environ.get('BENCH_HOME') or '~/.cache/bench'}")
    from bench.methods.retrieve.prebuilt import fetch_corpus

    for line in fetch_corpus(pair.dataset_id):  # a corpus published outside GitHub (CIRAL, AfriCLIRMatrix)
        click.echo(line)
    if to_dir:
        export_mirror(remotes, to_dir)
        click.echo(f"mirror written to {to_dir} (use it with BENCH_MIRROR={to_dir})")


@cli.command("systems")
def systems_cmd() -> None:
    """List every system (built-in and plugins): what it is and the run options (flags) it reads."""
    from bench.cli.common import systems_listing
    from bench.systems import all_systems

    for line in systems_listing(all_systems()):
        click.echo(line)


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
@click.option("--run", "external_runs", multiple=True, metavar="NAME=PATH",
              help="Also score a TREC run made elsewhere and store it as system NAME (repeatable).")
@option_flags(RUN_OPTION_FLAGS)
@click.option("--measures", metavar="NAMES", help="Comma-separated ir_measures names (e.g. AP,nDCG@20,R@100) "
              "instead of the pair's.")
@click.option("--baseline", metavar="SYSTEM", help="The report's baseline (default: bm25).")
def run_cmd(pair_name, pair_file, systems_list, depth, seed, runs_root, reports_dir, no_report, profile,
            bitext_noise, external_runs=(), measures=None, baseline=None, **option_values) -> None:
    """Run systems on a pair, score them with ir-measures, and write runs and a report."""
    from bench.experiment.plan import plan_run

    if profile == "ci" and not pair_name and not pair_file:
        pair_name = "sw-en"
    check_dirs(("--runs", runs_root, True), ("--reports", None if no_report else reports_dir, True))
    pair = _pair_given(pair_name, pair_file)
    if baseline is not None and no_report:
        raise BenchError("--baseline is the report's baseline, and --no-report writes no report", "drop one of them")
    started = time.perf_counter()
    options = {"profile": profile, "bitext_noise": bitext_noise, **option_values}
    plan = plan_run(pair, systems_list, options=options, depth=depth, seed=seed, measures=measures, runs=runs_root,
                    reports=None if no_report else reports_dir, baseline=baseline, external=external_runs)
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
    from bench.systems import place

    if not results:
        return
    results = sorted(results, key=lambda r: (place(r.system), r.system))
    measures = list(results[0].means)
    width = max(len(r.system) for r in results)
    click.echo(f"\n{pair}")
    click.echo("system".ljust(width) + "".join(f"{m:>10}" for m in measures) + f"{'time (s)':>10}")
    for r in results:
        click.echo(r.system.ljust(width) + "".join(f"{r.means[m]:>10.4f}" for m in measures) + f"{r.wall_time_s:>10.1f}")


@cli.command("eval")
@click.option("--pair", "pair_name", help="A built-in pair, e.g. sw-en (see `bench pairs`).")
@click.option("--pair-file", type=click.Path(path_type=Path), help="A pair defined in a YAML/TOML file.")
@click.option("--run", "external_runs", multiple=True, metavar="NAME=PATH",
              help="A TREC run made elsewhere, stored as system NAME (repeatable).")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path))
@click.option("--no-report", is_flag=True, help="Write the runs only.")
def eval_cmd(pair_name, pair_file, external_runs, runs_root, reports_dir, no_report) -> None:
    """Score TREC runs made elsewhere with ir-measures and store them beside bench's own runs."""
    from bench.experiment import external

    if not external_runs:
        raise BenchError("give at least one --run NAME=PATH", "e.g. bench eval --pair sw-en --run mine=run.trec")
    from bench.data.pair_ref import resolve_pair

    pair = resolve_pair(_pair_given(pair_name, pair_file))
    results = external.evaluate(pair, external_runs, runs_root)
    _echo_table(pair.name, results)
    if not no_report:
        from bench.results.report import write_pair_report

        for path in write_pair_report(pair.name, runs_root, reports_dir):
            click.echo(f"wrote {path}")


@cli.command("report")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path))
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


@cli.command("check")
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
    from bench.data.pairs import get_pair
    from bench.methods.translate.mt_train import train_mt

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

    from bench.methods.distill.recipes import RECIPES, trained_student
    from bench.data.pairs import get_pair

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
@option_flags(RUN_OPTION_FLAGS, aliases={"distill_steps": ("--steps",)})
@click.option("--seed", default=0, show_default=True)
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path))
def sweep_noise_cmd(pair_name, rates, systems_list, seed, runs_root, reports_dir, **option_values) -> None:
    """Retrain every trained system at each noise rate; write <pair>.noise.{csv,md,png}."""
    from bench.experiment.sweep import parse_rates, plan_sweep

    rate_list = parse_rates(rates)
    check_dirs(("--runs", runs_root, True), ("--reports", reports_dir, True))
    sweep = plan_sweep(pair_name, rate_list, systems_list, option_values, seed=seed, runs=runs_root)
    started = time.perf_counter()
    for path in sweep.execute(reports_dir):
        click.echo(f"wrote {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f} s")


from bench.cli.grid import grid_cmd  # noqa: E402  (bench grid: the experiment grid, in-process or on Ray)
cli.add_command(grid_cmd)


def _invoke(args: list[str]) -> None:
    """Run the command without click's own KeyboardInterrupt handling (which prints a blank line)."""
    if any(k.startswith("_BENCH_COMPLETE") for k in os.environ):  # shell completion: click's own main
        return cli.main(args, prog_name="bench")
    try:
        with cli.make_context("bench", list(args)) as ctx:
            cli.invoke(ctx)
    except click.exceptions.Exit as exc:  # --help, --version
        if exc.exit_code:
            sys.exit(exc.exit_code)


def main() -> None:
    """Console entry point: one line per error, non-zero exit, traceback only with --debug; a stop
    (SIGTERM, SIGINT) is one line and exit 128 + the signal, whatever exception it surfaced as."""
    from bench.infra import interrupts

    debug = "--debug" in sys.argv[1:]
    code = 0
    try:
        interrupts.install()  # SIGTERM and SIGINT unwind like Ctrl-C, JVM or not, and never hang
        _invoke(sys.argv[1:])
    except BaseException as exc:  # each kind becomes one line below
        if interrupts.received() is not None or isinstance(exc, (KeyboardInterrupt, click.exceptions.Abort)):
            log.debug("stopped: %s", type(exc).__name__, exc_info=exc)
            interrupts.exit_stopped()
        if isinstance(exc, SystemExit):
            code = exc.code
        elif not isinstance(exc, Exception) or debug:
            raise
        elif isinstance(exc, BenchError):
            click.echo(f"error: {exc}", err=True)
            code = EXIT_ERROR
        elif isinstance(exc, click.ClickException):
            exc.show()
            code = exc.exit_code
        else:  # a bug, not bad input: say so in one line, traceback with --debug
            click.echo(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
            code = 1
    finally:
        interrupts.settle()  # a signal during the interpreter's shutdown ends it with the same one line
    if interrupts.received() is not None:  # a library swallowed the interrupt: still a stop
        interrupts.exit_stopped()
    interrupts.exit_program(code, main)
