"""``bench train`` (the MT model, a distilled student) and ``bench sweep noise``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from bench.cli.common import LOG_STATE, LONG_RUN_S, BenchGroup, option_flags
from bench.cli.common import check_dirs
from bench.methods.translate.mt_config import MT_SIZES
from bench.systems.options import HELP, RunOptions


@click.group("train", cls=BenchGroup)
def train_group() -> None:
    """Train models on a pair's bitext (cached by fingerprint; an interrupted training resumes)."""


@train_group.command("mt")
@click.option("--pair", "pair_name", required=True, help="e.g. sw-en")
@click.option("--seed", default=0, show_default=True)
@click.option("--steps", type=click.IntRange(1), help="Training steps (default: the size's).")
@click.option("--size", "mt_size", type=click.Choice(tuple(MT_SIZES)), default="base", show_default=True,
              help=HELP["mt_size"][0].upper() + HELP["mt_size"][1:] + ".")
@click.option("--bitext-noise", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True)
def train_mt_cmd(pair_name: str, seed: int, steps: int | None, mt_size: str, bitext_noise: float) -> None:
    """Train the pair's foreign→English translation model (used by bm25-nmt and nmt-dense)."""
    from bench.data.pairs import get_pair
    from bench.methods.translate.mt_train import train_mt
    from bench.systems.stages.settings import mt_config

    config = mt_config(RunOptions(mt_size=mt_size, mt_steps=steps))
    click.echo(f"model: {train_mt(get_pair(pair_name), config=config, noise=bitext_noise, seed=seed)}")


@train_group.command("optical")
@click.option("--pair", "pair_name", required=True, help="e.g. sw-en")
@click.option("--seed", default=0, show_default=True)
@click.option("--steps", type=click.IntRange(1), help="Training steps (default: the recipe's budget in epochs).")
@click.option("--sentence-only", is_flag=True, help="The sdistill ablation: the sentence-level term alone.")
@click.option("--bitext-noise", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True)
def train_optical_cmd(pair_name: str, seed: int, steps: int | None, sentence_only: bool, bitext_noise: float) -> None:
    """Distil the multilingual student from the English teacher on the pair's bitext (the recipe of the
    `optical` system, or of `sdistill` with --sentence-only)."""

    from bench.methods.distill.recipes import RECIPES, trained_student
    from bench.data.pairs import get_pair

    config = RECIPES["sdistill" if sentence_only else "optical"]
    if steps:
        config = config.with_steps(steps)
    checkpoint, _ = trained_student(get_pair(pair_name), config, noise=bitext_noise, seed=seed)
    click.echo(f"checkpoint: {checkpoint}")


@click.group("sweep", cls=BenchGroup)
def sweep_group() -> None:
    """Run systems across a range of a setting and tabulate and plot the effect."""


@sweep_group.command("noise")
@click.option("--pair", "pair_name", required=True, help="e.g. sw-en")
@click.option("--rates", default="0,0.2,0.4", show_default=True, help="Fractions of misaligned bitext pairs.")
@click.option("--systems", "systems_list", help="Comma-separated trained systems (default: every system that "
              "learns from the bitext).")
@option_flags(exclude=("profile", "bitext_noise"), aliases={"distill_steps": ("--steps",)})
@click.option("--seeds", default="0", show_default=True, help="Comma-separated training seeds: every seed at "
              "every rate (the table gives the mean over seeds and the slope's interval over seeds and queries).")
@click.option("--runs", "runs_root", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Where runs are stored (runs/<pair>/<system>/).")
@click.option("--reports", "reports_dir", default="reports", show_default=True, type=click.Path(path_type=Path),
              help="Where reports are written.")
@click.option("--archive", type=click.Path(path_type=Path), help="A folder of archived runs (each run's manifest "
              "and per-query values, not its ranking: small enough to commit): a cell whose inputs are identical to "
              "an archived run's is taken from it, not run again; every run of the sweep is added to it.")
@click.option("--dry-run", is_flag=True, help="Check everything, print where each run would come from (the archive, a "
              "stored run, or run now) and what the runs to make build or train, for about how long, and stop.")
def sweep_noise_cmd(pair_name, rates, systems_list, seeds, runs_root, reports_dir, archive, dry_run=False,
                    **option_values) -> None:
    """Retrain every trained system at each noise rate and seed; write <pair>.noise.{csv,md,png}."""
    from bench.experiment.plan import parse_seeds
    from bench.experiment.sweep import parse_rates, plan_sweep

    rate_list = parse_rates(rates)
    seed_list = parse_seeds(seeds)
    check_dirs(("--runs", runs_root, True), ("--reports", reports_dir, True), ("--archive", archive, True))
    sweep = plan_sweep(pair_name, rate_list, systems_list, option_values, seeds=seed_list, runs=runs_root)
    quiet = click.get_current_context().meta.get(LOG_STATE, {}).get("quiet", False)
    survey = sweep.survey(archive) if dry_run or not quiet else None
    if dry_run:
        for line in survey.lines():
            click.echo(line)
        click.echo(f"  reports in {reports_dir}")
        click.echo("nothing was run (--dry-run)")
        return
    if survey is not None and survey.estimate.seconds > LONG_RUN_S:  # hours ahead: say what they are spent on first
        for line in survey.lines():
            click.echo(line, err=True)
    started = time.perf_counter()
    for path in sweep.execute(reports_dir, archive):
        click.echo(f"wrote {path}")
    click.echo(f"done in {time.perf_counter() - started:.1f} s")
