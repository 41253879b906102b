"""The noise sweep: rate parsing, the table and plot, and a real sweep of a trained system on a tiny pair."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace

import pandas as pd
import pytest

from bench.errors import BenchError
from bench.experiment.plan import RunPlan
from bench.experiment.sweep import noise_sweep, parse_rates, plan_runs, plan_sweep, recipe_pairs, write_sweep
from bench.results.archive import load_archived
from bench.results.runs import load_run
from bench.systems.options import RunOptions
from bench.systems import parse_systems
from cli_run import run_main
from test_dense import write_tiny_model
from test_distilled_systems import pair_with_bitext


pytestmark = pytest.mark.usefixtures("one_thread")


def test_rates_are_sorted_distinct_fractions():
    assert parse_rates("0.4, 0,0.2") == [0.0, 0.2, 0.4]
    for bad in ("", "0,1", "0,0", "a,0.2", "-0.1"):
        with pytest.raises(BenchError, match="--rates"):
            parse_rates(bad)


def test_a_sweep_over_one_rate_is_refused_before_it_trains(tmp_path):
    with pytest.raises(BenchError, match="at least two rates, got 0.2"):
        plan_sweep("sw-en", [0.2], "sdistill", runs=tmp_path / "runs")
    with pytest.raises(BenchError, match="at least two rates, got none"):
        plan_sweep("sw-en", [], "sdistill", runs=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def per_query_rows(spec):
    """Long per-query rows from {(system, seed): {query: [value at each rate]}} at rates 0, 0.2 and 0.4."""
    return pd.DataFrame([
        {"system": system, "seed": seed, "rate": rate, "query_id": query, "measure": "AP", "value": value}
        for (system, seed), queries in spec.items() for query, values in queries.items()
        for rate, value in zip((0.0, 0.2, 0.4), values)
    ])


def test_table_markdown_and_plot(tmp_path):
    per_query = per_query_rows({
        ("optical", 0): {"q1": [0.6, 0.55, 0.5], "q2": [0.6, 0.55, 0.5]},  # slope -0.25
        ("optical", 1): {"q1": [0.8, 0.75, 0.7], "q2": [0.8, 0.75, 0.7]},
        ("bm25-psq", 0): {"q1": [0.5, 0.4, 0.3], "q2": [0.5, 0.4, 0.3]},  # slope -0.5
        ("bm25-psq", 1): {"q1": [0.5, 0.4, 0.3], "q2": [0.5, 0.4, 0.3]},
    })
    paths = write_sweep("sw-en", per_query, {"mdense": {"AP": 0.59}}, tmp_path)
    assert [p.name for p in paths] == ["sw-en.noise.csv", "sw-en.noise.md", "sw-en.noise.png"]
    table = pd.read_csv(paths[0])
    assert list(table.columns) == ["pair", "system", "seed", "rate", "measure", "value"]
    assert table[(table["system"] == "optical") & (table["seed"] == 1)]["value"].tolist() == pytest.approx(
        [0.8, 0.75, 0.7])
    md = paths[1].read_text()
    # the mean over seeds ± their standard deviation (0.6 and 0.8: sd 0.1414), the change, the slope: every
    # seed and query falls by 0.25 per unit rate, so the interval has no width
    assert ("| optical | 0.700 ± 0.141 | 0.650 ± 0.141 | 0.600 ± 0.141 | -0.100 | -0.250 [-0.250, -0.250] |"
            in md)
    assert "| bm25-psq | 0.500 ± 0.000 | 0.400 ± 0.000 | 0.300 ± 0.000 | -0.200 | -0.500 [-0.500, -0.500] |" in md
    assert "| mdense (reference) | 0.590 | 0.590 | 0.590 | +0.000 |  |" in md
    assert "Seeds: 0, 1; each value is the mean over seeds ± their standard deviation." in md
    assert "Do their slopes differ" not in md  # no comparisons asked
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_slope_test_of_a_recipe_pair(tmp_path):
    # eight queries, one seed: optical falls faster than sdistill on every query, by 0.25 to 2.0 per unit
    # rate, so the sign-flip test is exact (2^8 sign patterns): only the observed pattern and its mirror
    # are as extreme, p = 2 / 256
    spec = {}
    for i in range(8):
        extra = 0.1 * (i + 1)  # optical's extra fall from rate 0 to 0.4: a slope difference of -(i + 1) / 4
        spec.setdefault(("sdistill", 0), {})[f"q{i}"] = [0.5, 0.45, 0.4]
        spec.setdefault(("optical", 0), {})[f"q{i}"] = [0.9, 0.85 - extra / 2, 0.8 - extra]
    paths = write_sweep("sw-en", per_query_rows(spec), {}, tmp_path, comparisons=[("optical", "sdistill")])
    md = paths[1].read_text()
    # mean slope difference: -(1 + 2 + ... + 8) / 4 / 8 = -1.125
    assert "| optical − sdistill | -1.125 [" in md
    assert "| 0.0078 | 1 | 8 |" in md


def test_recipe_pairs_are_the_systems_that_differ_only_in_their_recipe():
    systems = parse_systems("sdistill,sdistill-maxsim,optical,optical-maxsim,bm25-psq")
    assert recipe_pairs(systems) == [("optical", "sdistill"), ("optical-maxsim", "sdistill-maxsim")]
    assert recipe_pairs(parse_systems("optical,sdistill-maxsim")) == []


def test_sweep_retrains_at_each_rate(bench_home, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    pair = pair_with_bitext(tmp_path)
    paths = noise_sweep(pair, [0.0, 0.5], parse_systems("sdistill"), parse_systems("mdense"), tmp_path / "runs",
                        tmp_path / "reports", options={"encoder": str(model), "distill_steps": 2})
    table = pd.read_csv(paths[0])
    assert sorted(table[table["measure"] == "AP"]["rate"]) == [0.0, 0.5]
    # the uniform run names: rate 0 is the plain run, the others carry +noise<rate> (bench.results.runs.run_name)
    manifests = [json.loads((tmp_path / "runs" / pair.name / name / "manifest.json").read_text())
                 for name in ("sdistill", "sdistill+noise0.5")]
    assert [m["options"]["bitext_noise"] for m in manifests] == [0.0, 0.5]
    assert [(m["run"], m["variant"]) for m in manifests] == [("sdistill", {"seed": 0, "bitext_noise": 0.0}),
                                                             ("sdistill+noise0.5", {"seed": 0, "bitext_noise": 0.5})]
    assert sorted(p.name for p in (tmp_path / "runs" / pair.name).iterdir()) == [
        "mdense", "sdistill", "sdistill+noise0.5"]
    # half of the 8 pairs misaligned: another bitext, another student
    assert manifests[0]["artifacts"]["bitext"]["fingerprint"] != manifests[1]["artifacts"]["bitext"]["fingerprint"]
    assert manifests[0]["artifacts"]["student"]["checkpoint"] != manifests[1]["artifacts"]["student"]["checkpoint"]
    assert (tmp_path / "runs" / pair.name / "mdense" / "run.trec").exists()
    assert "mdense (reference)" in paths[1].read_text()


def test_a_sweep_takes_archived_cells_instead_of_training_them(bench_home, tmp_path, monkeypatch, caplog):
    model = write_tiny_model(tmp_path / "tiny")
    pair = pair_with_bitext(tmp_path)
    archive = tmp_path / "archive"
    options = {"encoder": str(model), "distill_steps": 2}

    def sweep(reports, **changed):
        return noise_sweep(pair, [0.0, 0.5], parse_systems("sdistill"), parse_systems("mdense"), tmp_path / "runs",
                           tmp_path / reports, options={**options, **changed}, archive=archive)

    first = sweep("first")
    assert sorted(p.name for p in (archive / pair.name).iterdir()) == ["mdense", "sdistill", "sdistill+noise0.5"]
    assert not (archive / pair.name / "sdistill" / "run.trec").exists()
    # the machine that ran them is gone: the archive alone gives the same table, and nothing runs
    shutil.rmtree(tmp_path / "runs")
    ran = []
    real_execute = RunPlan.execute

    def execute(plan, stored=None):
        ran.append([s.name for s in plan.systems])
        return real_execute(plan, stored)

    monkeypatch.setattr(RunPlan, "execute", execute)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = sweep("again")
    assert ran == []
    assert again[0].read_text() == first[0].read_text()
    # one line says how many came from the archive; -v (INFO) names each
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    summary = f"3 of the sweep's 3 runs taken from the archive in {archive} (identical inputs; -v names each)"
    assert warnings == [summary]
    assert f"xx-en/sdistill+noise0.5: taking the archived run in {archive} (identical inputs)" in caplog.text
    # other inputs (another step budget): the students are trained again and replace their archived runs; the
    # reference, which reads no distillation option, is still taken from the archive
    sweep("changed", distill_steps=3)
    assert ran == [["sdistill"], ["sdistill"]]
    assert "the archived run was made with other inputs (the run options, the system's spec): running it" in caplog.text
    manifest = json.loads((archive / pair.name / "sdistill+noise0.5" / "manifest.json").read_text())
    assert manifest["options"]["distill_steps"] == 3


def test_a_dry_run_says_where_each_run_comes_from_and_runs_nothing(monkeypatch, capsys, bench_home, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    pair = pair_with_bitext(tmp_path)
    archive, runs = tmp_path / "archive", tmp_path / "runs"
    noise_sweep(pair, [0.0, 0.5], parse_systems("sdistill"), parse_systems("mdense"), runs, tmp_path / "first",
                options={"encoder": str(model), "distill_steps": 2}, archive=archive)
    for where in (archive, runs):
        shutil.rmtree(where / pair.name / "sdistill+noise0.5")  # in neither: to run (its student is trained)
    shutil.rmtree(archive / pair.name / "mdense")  # only stored: reused
    checkpoints = sorted((bench_home / "checkpoints").iterdir())
    ran = []
    monkeypatch.setattr(RunPlan, "execute", lambda plan, stored=None: ran.append(plan))

    def dry_run(*flags):
        code, out, err = run_main(monkeypatch, capsys, "sweep", "noise", "--pair", str(tmp_path / "pair" / "pair.yaml"),
                                  "--rates", "0,0.5", "--systems", "sdistill", "--encoder", str(model), "--runs",
                                  str(runs), "--reports", str(tmp_path / "r"), "--archive", str(archive), "--dry-run",
                                  *flags)
        assert code == 0, err
        return out.splitlines()

    out = dry_run("--steps", "2")
    assert out[:5] == [
        "sweep: sdistill on xx-en at rates 0, 0.5, seeds 0; references (run once): mdense, mdense-maxsim",
        "  seed 0, rate 0: from the archive: sdistill",
        "  seed 0, rate 0.5: to run: sdistill",
        "  references: stored (reused): mdense; to run: mdense-maxsim",
        "  runs: 1 from the archive, 1 stored (reused), 2 to run"]
    assert "    built  sdistill student of xx-en (seed 0, noise 0.5): no cost" in out  # kept in BENCH_HOME
    assert out[-1] == "nothing was run (--dry-run)"
    # another step budget: the archived student's run is not taken, and says why; both students would train
    out = dry_run("--steps", "3")
    assert out[1:4] == ["  seed 0, rate 0: to run: sdistill",
                        "    sdistill: the archived run was made with other inputs (the run options, the system's spec)"
                        "; the stored run was made with other inputs (the run options, the system's spec)",
                        "  seed 0, rate 0.5: to run: sdistill"]
    trainings = [line.split(":")[0].strip() for line in out if line.startswith("    train ")]
    assert trainings == ["train  sdistill student of xx-en (seed 0)",
                         "train  sdistill student of xx-en (seed 0, noise 0.5)"]
    assert ran == [] and sorted((bench_home / "checkpoints").iterdir()) == checkpoints
    assert not (tmp_path / "r").exists()


def test_each_run_is_archived_as_soon_as_it_is_stored(bench_home, tmp_path):
    # a plan whose second system fails: the first one's run is in the archive already
    model = write_tiny_model(tmp_path / "tiny")
    pair = pair_with_bitext(tmp_path)

    def broken(ctx):
        raise BenchError("the second system failed")

    mdense, bm25 = parse_systems("mdense,bm25")
    plan = RunPlan(pair, pair.name, (mdense, replace(bm25, run=broken)),
                   RunOptions.from_mapping({"encoder": str(model)}), runs=tmp_path / "runs")
    with pytest.raises(BenchError, match="the second system failed"):
        plan_runs(plan, tmp_path / "archive")
    assert [p.name for p in (tmp_path / "archive" / pair.name).iterdir()] == ["mdense"]
    archived = load_archived(tmp_path / "archive" / pair.name / "mdense")
    stored = load_run(tmp_path / "runs" / pair.name / "mdense")
    pd.testing.assert_frame_equal(archived.per_query, stored.per_query)


def test_a_dry_run_before_the_encoder_is_prepared_says_its_runs_cannot_be_matched_yet(bench_home, tmp_path):
    pair = pair_with_bitext(tmp_path)  # the packaged encoder, not converted in this empty BENCH_HOME
    lines = plan_sweep(pair, [0.0, 0.5], "sdistill", runs=tmp_path / "runs").survey(tmp_path / "archive").lines()
    assert lines[4:6] == [
        "  runs: 0 from the archive, 0 stored (reused), 4 to run",
        "  4 of them counted as to run because their encoder is not prepared yet (the run converts or downloads it "
        "first): only then can they be matched to a stored or archived run"]
    assert not (bench_home / "models").exists() and not (tmp_path / "runs").exists()


def test_a_long_sweep_prints_its_survey_first(monkeypatch, capsys, bench_home, tmp_path):
    from bench.infra import rates

    model = write_tiny_model(tmp_path / "tiny")
    pair_with_bitext(tmp_path)
    rates.record("student", 1, 1000.0)  # 1,000 s a step: two students of 2 steps, about 67 min

    def sweep(steps, *flags):
        code, out, err = run_main(monkeypatch, capsys, *flags, "sweep", "noise", "--pair",
                                  str(tmp_path / "pair" / "pair.yaml"), "--rates", "0,0.5", "--systems", "sdistill",
                                  "--encoder", str(model), "--steps", steps, "--runs", str(tmp_path / "runs"),
                                  "--reports", str(tmp_path / "r"))
        assert code == 0, err
        return out, err

    out, err = sweep("2")
    survey = err.splitlines()
    assert survey[0].startswith("sweep: sdistill on xx-en at rates 0, 0.5, seeds 0")
    assert "  estimated time to build and train: about 1 h 07 min (retrieval and scoring not included)" in survey
    assert "sweep:" not in out and (tmp_path / "r" / "xx-en.noise.md").is_file()
    _, err = sweep("3", "-q")  # never under -q (two students to train again)
    assert "sweep:" not in err
