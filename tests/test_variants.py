"""Seeds and noise rates as run variants: their names, the manifests, and how reports, the leaderboard,
`bench check` and the sweep read them (runs written by run_systems on the tiny pair, or by hand with
known per-query values)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.results import regress, report, stats
from bench.errors import BenchError
from bench.systems.options import RunOptions
from bench.results.report.model import fmt_p
from bench.experiment.runner import cell_name, run_systems
from bench.results.runs import MANIFEST_FILE, RUN_FILE, load_run, load_runs, parse_run_name, run_name, write_run
from bench.experiment.sweep import noise_sweep
from bench.systems import System, get_system
from test_distilled_systems import pair_with_bitext

N = 1000  # resamples: the 2**8 = 256 sign assignments of 8 queries are enumerated exactly
BASE = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4])  # bm25's AP per query (mean 0.225)
OFFSETS = np.array([-0.1, 0.1, -0.05, 0.05, 0.0, 0.0, 0.02, -0.02])  # sum 0: a seed's mean is its level
SCALES = (1.0, 0.6, 0.8)  # how much each seed's queries vary around its level


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("system, seed, noise, name", [
    ("optical", 0, 0.0, "optical"), ("optical", 1, 0.0, "optical+seed1"), ("optical", 2, 0.2, "optical+noise0.2+seed2"),
    ("optical", 0, 0.4, "optical+noise0.4"), ("my+run", 3, 1e-05, "my+run+noise1e-05+seed3"),
])
def test_run_names_and_their_inverse(system, seed, noise, name):
    assert run_name(system, seed, noise) == name
    assert parse_run_name(name) == (system, seed, noise)


@pytest.mark.parametrize("system, seed, options, name", [
    ("bm25", 1, {}, "bm25"),  # reads no bitext and trains nothing: the same run whatever the seed
    ("bm25", 2, {"bitext_noise": 0.2}, "bm25"),
    ("oracle-bm25", 1, {}, "oracle-bm25"), ("mdense", 1, {}, "mdense"), ("mdense-maxsim", 3, {}, "mdense-maxsim"),
    ("optical", 0, {}, "optical"), ("optical", 1, {}, "optical+seed1"),
    ("optical", 2, {"bitext_noise": 0.2}, "optical+noise0.2+seed2"), ("sdistill-maxsim", 0, {"bitext_noise": 0.4},
                                                                     "sdistill-maxsim+noise0.4"),
    ("bm25-psq", 1, {}, "bm25-psq"),  # IBM Model 1 is deterministic: the seed only picks the noised pairs
    ("bm25-psq", 1, {"bitext_noise": 0.2}, "bm25-psq+noise0.2+seed1"),
    ("optical-hybrid", 1, {}, "optical-hybrid+seed1"), ("mdense-hybrid", 1, {}, "mdense-hybrid"),
    ("bm25-nmt", 1, {}, "bm25-nmt+seed1"), ("bm25-nmt", 1, {"mt_model": "some/model", "bitext_noise": 0.2}, "bm25-nmt"),
])
def test_cell_names_of_the_systems(system, seed, options, name):
    assert cell_name(get_system(system), seed, options) == name


def fake_trained(ctx):
    """A "trained" system whose run depends on the seed and the noise (as a student's does)."""
    shift = ctx.seed + 10 * ctx.options.bitext_noise
    return {"q1": {"d1": 1.0 + shift, "d2": 2.0}, "q2": {"d2": 1.0}, "q3": {"d1": 1.0, "d4": 0.5}}


TRAINED = System("student", "a fake trained system", fake_trained, {}, reads=("bitext_noise", "distill_steps"))


def reference(ctx):
    return {"q1": {"d1": 1.0}, "q2": {"d3": 1.0}, "q3": {"d2": 1.0}}


REFERENCE = System("ref", "a fake reference", reference, {})


def test_run_systems_writes_each_cell_under_its_name(bench_home, tmp_path):
    pair = pair_with_bitext(tmp_path)
    root = tmp_path / "runs"
    bm25 = get_system("bm25")
    for seed, noise in ((0, 0.0), (1, 0.0), (2, 0.2)):
        run_systems(pair, [bm25, TRAINED], root, seed=seed, options={"bitext_noise": noise})
    assert sorted(p.name for p in (root / "xx-en").iterdir()) == ["bm25", "student", "student+noise0.2+seed2",
                                                                   "student+seed1"]
    manifest = json.loads((root / "xx-en" / "student+noise0.2+seed2" / MANIFEST_FILE).read_text())
    assert (manifest["system"], manifest["run"], manifest["seed"]) == ("student", "student+noise0.2+seed2", 2)
    assert manifest["variant"] == {"seed": 2, "bitext_noise": 0.2} and manifest["options"]["bitext_noise"] == 0.2
    # bm25's run depends on no seed or noise: its cell stays the default one, written by the first invocation and
    # reused by the others (issue 26: the same identity; the process seed it was written under is recorded)
    bm25_manifest = json.loads((root / "xx-en" / "bm25" / MANIFEST_FILE).read_text())
    assert (bm25_manifest["run"], bm25_manifest["variant"], bm25_manifest["seed"]) == (
        "bm25", {"seed": 0, "bitext_noise": 0.0}, 0)
    # the TREC tag is the run's name
    assert {line.split()[-1] for line in (root / "xx-en" / "student+seed1" / RUN_FILE).read_text().splitlines()} == {
        "student+seed1"}
    runs = {r.name: (r.system, r.seed, r.noise, r.is_default) for r in load_runs(root, "xx-en")}
    assert runs == {"bm25": ("bm25", 0, 0.0, True), "student": ("student", 0, 0.0, True),
                    "student+seed1": ("student", 1, 0.0, False), "student+noise0.2+seed2": ("student", 2, 0.2, False)}


def test_a_run_written_before_manifests_named_their_variant(tmp_path):
    make(tmp_path, "sw-en", "optical", BASE, seed=1)
    path = tmp_path / "sw-en" / "optical+seed1"
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    del manifest["variant"], manifest["run"]
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))
    (path / "manifest.sha256").unlink()  # as bench wrote runs before manifests were hashed too
    stored = load_run(path)
    assert (stored.system, stored.seed, stored.noise, stored.is_default) == ("optical", 1, 0.0, False)


# --- reports --------------------------------------------------------------------------------------


def make(root, pair: str, system: str, ap, seed: int = 0, noise: float = 0.0) -> None:
    """A run of 8 queries with AP ``ap`` per query and nDCG@10 = AP + 0.05, under its variant's name."""
    ap = np.asarray(ap, dtype=float)
    rows = [(f"q{i}", m, float(v)) for m, vs in (("AP", ap), ("nDCG@10", ap + 0.05)) for i, v in enumerate(vs)]
    table = pd.DataFrame(rows, columns=["query_id", "measure", "value"])
    info = {"name": pair, "description": "", "query_lang": "sw", "doc_lang": "en", "dataset_id": "t",
            "low_resource": True, "tuning": False, "measures": ["AP", "nDCG@10"]}
    write_run(root, pair, system, {f"q{i}": {"d1": 1.0} for i in range(ap.size)}, table,
              {"pair": pair, "system": system, "pair_info": info, "seed": seed, "started_at": "2025-01-01T00:00:00Z",
               "commit": "abc", "dataset_id": "t"}, 10, seed=seed, noise=noise)


@pytest.fixture
def seeded(tmp_path):
    """bm25 and mdense once; optical at seeds 0, 1, 2 with MAP 0.5, 0.7, 0.9; optical at noise 0.2 with
    seeds 0, 1 (MAP 0.4, 0.6)."""
    root = tmp_path / "runs"
    make(root, "sw-en", "bm25", BASE)
    make(root, "sw-en", "mdense", BASE + 0.2 + OFFSETS[::-1])
    for seed, level in ((0, 0.5), (1, 0.7), (2, 0.9)):
        make(root, "sw-en", "optical", level + OFFSETS * SCALES[seed], seed=seed)
    for seed, level in ((0, 0.4), (1, 0.6)):
        make(root, "sw-en", "optical", level + OFFSETS, seed=seed, noise=0.2)
    return root


def values(root, name: str, measure: str = "AP") -> np.ndarray:
    table = pd.read_csv(root / "sw-en" / name / "perquery.csv")
    return table[table["measure"] == measure]["value"].to_numpy()


def test_the_report_shows_mean_and_sample_std_over_seeds(seeded, tmp_path):
    built = report.build_pair_report("sw-en", seeded, n_resamples=N)
    assert built.systems == ["bm25", "mdense", "optical"]  # noise variants are not in the main table
    assert built.seeds("optical") == 3 and built.replicates["optical"].seeds == [0, 1, 2]
    mean, std = built.replicates["optical"].spread("AP")
    assert (mean, std) == (pytest.approx(0.7), pytest.approx(0.2))  # sample std of 0.5, 0.7, 0.9 (ddof 1)
    # the table's values: per query, the mean over the three seeds
    averaged = np.mean([values(seeded, n) for n in ("optical", "optical+seed1", "optical+seed2")], axis=0)
    assert built.row("optical", "AP")["mean"] == pytest.approx(0.7)
    assert built.row("optical", "AP")["delta"] == pytest.approx(0.475)
    report.write_pair_report("sw-en", seeded, tmp_path / "reports", n_resamples=N)
    csv = pd.read_csv(tmp_path / "reports" / "sw-en.perquery.csv")
    got = csv[(csv["system"] == "optical") & (csv["measure"] == "AP")]["value"].to_numpy()
    np.testing.assert_allclose(got, averaged)
    md = (tmp_path / "reports" / "sw-en.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| optical (3 seeds) |"))
    assert row.startswith("| optical (3 seeds) | **0.700 ± 0.200** † [") and "| **0.750 ± 0.200** † [" in row
    assert "sample standard deviation over seeds (ddof 1)" in md
    html = (tmp_path / "reports" / "sw-en.html").read_text()
    assert "0.700 ± 0.200" in html and "Seeds (MAP against the baseline)" in html and "Runs on noised bitext" in html


def test_each_seed_is_tested_on_its_own(seeded, tmp_path):
    built = report.build_pair_report("sw-en", seeded, n_resamples=N)
    bm25 = values(seeded, "bm25")
    per_seed = built.per_seed.set_index("seed")
    assert list(per_seed["run"]) == ["optical", "optical+seed1", "optical+seed2"]
    p_rand = [stats.randomization_test(values(seeded, r), bm25, n_resamples=N, seed=0) for r in per_seed["run"]]
    p_t = [stats.paired_ttest(values(seeded, r), bm25) for r in per_seed["run"]]
    assert list(per_seed["p_randomization"]) == p_rand and list(per_seed["p_ttest"]) == pytest.approx(p_t)
    assert list(per_seed["delta"]) == pytest.approx([0.275, 0.475, 0.675])
    assert list(per_seed["p_holm"]) == list(stats.holm(p_rand))
    report.write_pair_report("sw-en", seeded, tmp_path / "reports", n_resamples=N)
    md = (tmp_path / "reports" / "sw-en.md").read_text()
    r = per_seed.loc[1]
    line = (f"| optical | 1 | optical+seed1 | 0.700 | 0.750 | +0.475 | 8/0/0 | {fmt_p(r['p_randomization'])} | "
            f"{fmt_p(r['p_ttest'])} | {fmt_p(r['p_holm'])}")
    assert line in md
    # the head-to-head questions, seed by seed: optical against mdense (one seed)
    h2h = built.per_seed_head_to_head
    h2h = h2h[h2h["reference"] == "mdense"]
    mdense = values(seeded, "mdense")
    assert list(h2h["seed"]) == [0, 1, 2]
    assert list(h2h["p_randomization"]) == [stats.randomization_test(values(seeded, r), mdense, n_resamples=N, seed=0)
                                            for r in h2h["run"]]
    assert list(h2h["delta"]) == pytest.approx([0.075, 0.275, 0.475])
    assert "### Head to head, seed by seed (MAP)" in md


def test_noise_variants_have_their_own_table(seeded, tmp_path):
    report.write_pair_report("sw-en", seeded, tmp_path / "reports", n_resamples=N)
    md = (tmp_path / "reports" / "sw-en.md").read_text()
    # MAP 0.4 and 0.6: mean 0.5, sample std 0.141; nDCG@10 0.05 higher; Δ against optical's 0.7 without noise
    assert "| optical | 0.2 | 2 | 0.500 ± 0.141 | 0.550 ± 0.141 | -0.200 |" in md
    effectiveness = md[md.index("## Effectiveness"):md.index("## Against the baseline")]
    assert "noise" not in effectiveness


def test_a_single_seed_report_is_unchanged_by_variants(tmp_path):
    root = tmp_path / "runs"
    make(root, "sw-en", "bm25", BASE)
    make(root, "sw-en", "optical", BASE + 0.2)
    report.write_pair_report("sw-en", root, tmp_path / "reports", n_resamples=N)
    md = (tmp_path / "reports" / "sw-en.md").read_text()
    assert "| optical | **0.425** † [" in md and "±" not in md and "## Seeds" not in md and "noised" not in md


def test_only_noise_variants_is_an_error(tmp_path):
    make(tmp_path, "sw-en", "optical", BASE, noise=0.2)
    with pytest.raises(BenchError, match="every run of pair sw-en .* is on noised bitext"):
        report.build_pair_report("sw-en", tmp_path)


def test_the_leaderboard_shows_mean_and_std_over_seeds(seeded, tmp_path):
    data = report.leaderboard_data(seeded, tmp_path / "reports", n_resamples=N)
    entry = {e["system"]: e for e in data["entries"]}
    assert sorted(entry) == ["bm25", "mdense", "optical"]  # one entry per system: no noise variants
    assert entry["optical"]["seeds"] == [0, 1, 2] and entry["bm25"]["seeds"] == [0]
    assert (entry["optical"]["scores"]["AP"] == pytest.approx(0.7)
            and entry["optical"]["std"]["AP"] == pytest.approx(0.2))
    assert entry["optical"]["seed_scores"]["AP"] == pytest.approx([0.5, 0.7, 0.9])
    assert entry["optical"]["runs"] == ["runs/sw-en/optical", "runs/sw-en/optical+seed1", "runs/sw-en/optical+seed2"]
    assert data["low_resource_mean"]["optical"]["AP"] == pytest.approx(0.7)
    report.write_leaderboard(seeded, tmp_path / "reports", n_resamples=N)
    md = (tmp_path / "reports" / "leaderboard.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| optical |"))
    assert row.startswith("| optical | **0.700 ± 0.200 (3 seeds)** † [") and "| bm25 | 0.225 [" in md
    assert "runs/sw-en/optical, runs/sw-en/optical+seed1, runs/sw-en/optical+seed2" in md
    assert "0.700 ± 0.200 (3 seeds)" in (tmp_path / "reports" / "leaderboard.html").read_text()


# --- bench check, external names --------------------------------------------------------------------


def test_check_reads_the_default_cell_and_named_variants_only(seeded, tmp_path):
    expected = tmp_path / "expected.yaml"
    expected.write_text("version: 1\ntolerance: 0.01\nexpected:\n  sw-en:\n    optical:\n      AP: 0.5\n"
                        "    optical+seed1:\n      AP: 0.7\n")
    verdicts = regress.check(expected, seeded)
    assert [(v.system, v.observed, v.status) for v in verdicts] == [
        ("optical", pytest.approx(0.5), regress.OK), ("optical+seed1", pytest.approx(0.7), regress.OK)]
    fresh = tmp_path / "fresh.yaml"
    regress.update(fresh, seeded)
    rows = yaml.safe_load(fresh.read_text())["expected"]["sw-en"]
    assert list(rows) == ["bm25", "mdense", "optical"]  # new rows come from default cells only
    assert rows["optical"]["AP"] == 0.5
    expected.write_text("version: 1\ntolerance: 0.01\nexpected:\n  sw-en:\n    optical+seed1:\n      AP: 0.1\n")
    regress.update(expected, seeded)  # a variant the file names is kept up to date
    assert yaml.safe_load(expected.read_text())["expected"]["sw-en"]["optical+seed1"] == {"AP": 0.7}


def test_an_external_run_may_not_take_a_variant_name():
    from bench.experiment.external import check_name

    for name in ("mine+seed1", "optical+noise0.2", "x+noise0.2+seed3"):
        with pytest.raises(BenchError, match="ends like a seed or noise variant"):
            check_name(name)
    check_name("mine+v2")  # a '+' alone is fine


# --- the sweep --------------------------------------------------------------------------------------


def test_the_sweep_writes_its_runs_under_the_uniform_names(bench_home, tmp_path):
    pair = pair_with_bitext(tmp_path)
    root = tmp_path / "runs"
    paths = noise_sweep(pair, [0.0, 0.2], [TRAINED], [REFERENCE], root, tmp_path / "reports", seeds=[1])
    assert sorted(p.name for p in (root / "xx-en").iterdir()) == ["ref", "student+noise0.2+seed1", "student+seed1"]
    table = pd.read_csv(paths[0])
    # the sweep's table holds each run's own means
    for rate, name in ((0.0, "student+seed1"), (0.2, "student+noise0.2+seed1")):
        stored = json.loads((root / "xx-en" / name / MANIFEST_FILE).read_text())
        assert stored["variant"] == {"seed": 1, "bitext_noise": rate}
        got = table[table["rate"] == rate].set_index("measure")["value"].to_dict()
        assert got == pytest.approx(stored["measures"])
    assert TRAINED.variant(1, RunOptions(bitext_noise=0.2)) == (1, 0.2)
    # and the pair report reads the sweep's runs: the rate-0 run in the main table, the other apart
    built = report.build_pair_report("xx-en", root, n_resamples=N)
    assert built.systems == ["ref", "student"] and [(c.system, c.noise, c.seeds) for c in built.noise] == [
        ("student", 0.2, [1])]
