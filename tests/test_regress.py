"""bench.results.regress: verdicts and exit codes for every case, the schema, and --update."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from bench.results import regress
from bench.errors import BenchError
from bench.results.regress import FAIL, OK, OKISH, SKIP
from bench.results.runs import write_run
from bench.infra.store import COMPLETE_MARKER


def make_run(root, pair, system, means: dict[str, float]) -> None:
    """A complete run of 2 queries whose per-query values average to ``means``."""
    rows = [(q, m, v + d) for m, v in means.items() for q, d in (("q1", -0.01), ("q2", 0.01))]
    table = pd.DataFrame(rows, columns=["query_id", "measure", "value"])
    write_run(root, pair, system, {"q1": {"d": 1.0}}, table,
              {"pair": pair, "system": system, "measures": means, "started_at": "2025-01-01T00:00:00Z"}, 10)


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "sw-en", "bm25", {"AP": 0.40, "nDCG@10": 0.50})
    make_run(root, "sw-en", "optical", {"AP": 0.45, "nDCG@10": 0.55})
    return root


def write_expected(path, body: str, tolerance: float = 0.01) -> None:
    path.write_text(f"version: 1\ntolerance: {tolerance}\nexpected:\n{body}")


# --- the verdict rule -----------------------------------------------------------------------------


@pytest.mark.parametrize("observed, status", [
    (0.4000, OK),  # the same
    (0.40005, OK),  # within EPSILON = 1e-4
    (0.39991, OK),
    (0.4002, OKISH),  # better
    (0.9, OKISH),  # better by any amount
    (0.3995, OKISH),  # worse, within the tolerance .001
    (0.399, OKISH),  # worse by exactly the tolerance
    (0.3985, FAIL),  # worse by more than the tolerance
    (None, FAIL),  # missing
    (float("nan"), FAIL),
])
def test_verdict(observed, status):
    assert regress.verdict(0.4, observed, tolerance=0.001) == status


def test_exit_code():
    def v(status):
        return regress.Verdict("sw-en", "bm25", "AP", 0.4, 0.01, 0.4, status)

    assert regress.exit_code([v(OK), v(OKISH)]) == 0
    assert regress.exit_code([v(OK), v(FAIL), v(OKISH)]) == 1
    assert regress.exit_code([]) == 1  # checking nothing is not a pass


# --- check ----------------------------------------------------------------------------------------


def test_check_all_ok(runs, tmp_path):
    path = tmp_path / "expected.yaml"
    write_expected(path, "  sw-en:\n    bm25:\n      AP: 0.4\n      nDCG@10: 0.5\n    optical:\n      AP: 0.45\n")
    verdicts = regress.check(path, runs)
    assert [(v.system, v.measure, v.status) for v in verdicts] == [
        ("bm25", "AP", OK), ("bm25", "nDCG@10", OK), ("optical", "AP", OK)]
    assert verdicts[0].observed == pytest.approx(0.4) and regress.exit_code(verdicts) == 0
    assert regress.summary(verdicts) == "3 OK, 0 OKISH, 0 FAIL"


def test_check_one_changed_expectation_fails(runs, tmp_path):
    path = tmp_path / "expected.yaml"
    write_expected(path, "  sw-en:\n    bm25:\n      AP: 0.42\n      nDCG@10: 0.5\n")  # expects more than .40 + .01
    verdicts = regress.check(path, runs)
    assert [v.status for v in verdicts] == [FAIL, OK] and regress.exit_code(verdicts) == 1
    assert verdicts[0].delta == pytest.approx(-0.02)
    line = verdicts[0].line()
    assert line.startswith("FAIL   sw-en  bm25  AP: expected 0.4200, observed 0.4000 (-0.0200)")
    assert "worse than expected by more than 0.01" in line


def test_check_okish_within_tolerance_and_better(runs, tmp_path):
    path = tmp_path / "expected.yaml"
    write_expected(path, "  sw-en:\n    bm25:\n      AP: 0.405\n      nDCG@10: 0.3\n")
    verdicts = regress.check(path, runs)
    assert [v.status for v in verdicts] == [OKISH, OKISH] and regress.exit_code(verdicts) == 0
    assert "better than expected" in verdicts[1].line()


def test_check_row_tolerance_overrides_the_default(runs, tmp_path):
    path = tmp_path / "expected.yaml"
    write_expected(path, "  sw-en:\n    bm25:\n      AP: {score: 0.42, tolerance: 0.05}\n"
                         "      nDCG@10: {score: 0.52}\n", tolerance=0.001)
    verdicts = regress.check(path, runs)
    assert [(v.status, v.tolerance) for v in verdicts] == [(OKISH, 0.05), (FAIL, 0.001)]


def test_check_missing_run_and_measure_fail(runs, tmp_path):
    path = tmp_path / "expected.yaml"
    write_expected(path, "  sw-en:\n    bm25:\n      R@100: 0.8\n    mdense:\n      AP: 0.3\n"
                         "  ha-en:\n    bm25:\n      AP: 0.3\n")
    verdicts = regress.check(path, runs, systems=["bm25", "mdense"])  # named: a missing run is a FAIL
    assert [v.status for v in verdicts] == [FAIL, FAIL, FAIL] and regress.exit_code(verdicts) == 1
    assert "the run has no R@100" in verdicts[0].line()
    assert "no complete run in" in verdicts[1].reason and "observed missing" in verdicts[1].line()
    # not named: rows without a run directory are SKIP lines (a partial run is not a wall of FAILs)
    verdicts = regress.check(path, runs)
    assert [v.status for v in verdicts] == [FAIL, SKIP, SKIP] and regress.exit_code(verdicts) == 1
    assert (verdicts[1].line().startswith("SKIP   sw-en  mdense  AP: expected 0.3000")
            and "not checked" in verdicts[1].line())
    assert regress.summary(verdicts) == "0 OK, 0 OKISH, 1 FAIL, 2 SKIP"


def test_check_only_the_systems_asked_for_and_nothing_matched(runs, tmp_path):
    path = tmp_path / "expected.yaml"
    write_expected(path, "  sw-en:\n    bm25:\n      AP: 0.4\n    mdense:\n      AP: 0.3\n"
                         "  ha-en:\n    bm25:\n      AP: 0.3\n")
    verdicts = regress.check(path, runs, systems=["mdense"])
    assert [(v.pair, v.system, v.status) for v in verdicts] == [("sw-en", "mdense", FAIL)]
    with pytest.raises(BenchError, match="no expected scores for system 'bm52'"):
        regress.check(path, runs, systems=["bm52"])
    write_expected(path, "  ha-en:\n    bm25:\n      AP: 0.3\n")
    verdicts = regress.check(path, runs)
    assert [v.status for v in verdicts] == [SKIP] and regress.exit_code(verdicts) == 1  # nothing matched: a failure
    assert regress.summary(verdicts) == "0 OK, 0 OKISH, 0 FAIL, 1 SKIP; nothing was checked"


def test_check_a_run_deleted_half_way_fails(runs, tmp_path):
    path = tmp_path / "expected.yaml"
    write_expected(path, "  sw-en:\n    bm25:\n      AP: 0.4\n    optical:\n      AP: 0.45\n")
    (runs / "sw-en" / "optical" / COMPLETE_MARKER).unlink()
    assert [v.status for v in regress.check(path, runs)] == [OK, FAIL]


# --- the file -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("version: 1\ntolerance: 0.01\nexpected: {}\nextra: 1\n",
     "top level: Additional properties are not allowed ('extra'"),
    ("version: 1\nexpected: {}\n", "'tolerance' is a required property"),
    ("version: 2\ntolerance: 0.01\nexpected: {}\n", "version: 1 was expected"),
    ("version: 1\ntolerance: 0.01\nexpected:\n  sw-en:\n    bm25:\n      AP: {score: 0.4, tol: 0.1}\n",
     "expected/sw-en/bm25/AP: Additional properties are not allowed ('tol'"),
    ("version: 1\ntolerance: 0.01\nexpected:\n  sw-en:\n    bm25:\n      AP: high\n",
     "expected/sw-en/bm25/AP: 'high' is neither a score nor {score, tolerance}"),
    ("version: 1\ntolerance: -1\nexpected: {}\n", "tolerance: -1 is less than the minimum of 0"),
    ("version: 1\ntolerance: 0.01\nexpected:\n  sw-en:\n    bm25:\n      MAPP: 0.4\n", "unknown measure 'MAPP'"),
    ("version: 1\ntolerance: 0.01\nexpected:\n  sw-en:\n    bm25:\n      MAP: 0.4\n", "write 'MAP' as 'AP'"),
    ("version: 1\ntolerance: 0.01\nexpected:\n  sw-en:\n    bm25:\n      nDCG@ 10: 0.4\n",
     "write 'nDCG@ 10' as 'nDCG@10'"),
    ("version: 1\ntolerance: 0.01\nexpected:\n  sw-en:\n    bm25:\n      AP: 0.4\n      AP: 0.5\n",
     ":7: invalid YAML: duplicate key 'AP'"),
    ("version: 1\ntolerance: [\n", "invalid YAML"),
    ("", "the file is empty"),
])
def test_invalid_files_are_one_line_errors(tmp_path, runs, text, message):
    path = tmp_path / "expected.yaml"
    path.write_text(text)
    with pytest.raises(BenchError) as info:
        regress.check(path, runs)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_or_empty_expectations(tmp_path, runs):
    with pytest.raises(BenchError, match="no expected scores at .*bench check --update"):
        regress.check(tmp_path / "nope.yaml", runs)
    path = tmp_path / "expected.yaml"
    write_expected(path, "  {}\n")
    with pytest.raises(BenchError, match="lists no expected scores"):
        regress.check(path, runs)


def test_schema_file_is_valid():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(regress._schema())


# --- update ---------------------------------------------------------------------------------------


def test_update_creates_a_file_that_checks_ok(runs, tmp_path):
    path = tmp_path / "reports" / "expected.yaml"
    changes = regress.update(path, runs)
    assert len(changes) == 4 and changes[0] == regress.Change("sw-en", "bm25", "AP", None, 0.4)
    data = yaml.safe_load(path.read_text())
    assert data == {"version": 1, "tolerance": regress.DEFAULT_TOLERANCE, "expected": {"sw-en": {
        "bm25": {"AP": 0.4, "nDCG@10": 0.5}, "optical": {"AP": 0.45, "nDCG@10": 0.55}}}}
    assert "      AP: 0.4000\n" in path.read_text() and path.read_text().startswith("# Expected scores")
    verdicts = regress.check(path, runs)
    assert {v.status for v in verdicts} == {OK} and regress.exit_code(verdicts) == 0


def test_update_keeps_tolerances_measures_other_pairs_and_missing_runs(runs, tmp_path):
    path = tmp_path / "expected.yaml"
    write_expected(path, "  sw-en:\n    bm25:\n      AP: {score: 0.3, tolerance: 0.05}\n"
                         "    mdense:\n      AP: 0.2\n  ha-en:\n    bm25:\n      AP: 0.1\n", tolerance=0.02)
    changes = regress.update(path, runs, pairs=["sw-en"])
    data = regress.load_expected(path)
    assert data["tolerance"] == 0.02
    assert data["expected"]["ha-en"] == {"bm25": {"AP": 0.1}}  # another pair: untouched
    assert data["expected"]["sw-en"] == {
        "bm25": {"AP": {"score": 0.4, "tolerance": 0.05}},  # its measures and tolerance kept
        "mdense": {"AP": 0.2},  # no run: kept
        "optical": {"AP": 0.45, "nDCG@10": 0.55},  # new: every measure of the run
    }
    assert regress.Change("sw-en", "bm25", "AP", 0.3, 0.4) in changes and len(changes) == 3
    assert regress.update(path, runs, pairs=["sw-en"]) == []  # a second update changes nothing


def test_update_then_regression_then_fail(runs, tmp_path):
    path = tmp_path / "expected.yaml"
    regress.update(path, runs)
    shutil.rmtree(runs / "sw-en" / "optical")
    make_run(runs, "sw-en", "optical", {"AP": 0.40, "nDCG@10": 0.549})  # AP dropped by .05
    verdicts = {(v.system, v.measure): v.status for v in regress.check(path, runs)}
    assert verdicts == {("bm25", "AP"): OK, ("bm25", "nDCG@10"): OK, ("optical", "AP"): FAIL,
                        ("optical", "nDCG@10"): OKISH}


# --- issue 25: a row knows what it was made with ------------------------------------------------------------


def made_run(root, system: str, profile: str, encoder: str | None = None, ap: float = 0.40) -> None:
    """A run of ``system`` whose manifest records a profile and a spec, as bench run writes them."""
    spec = {"system": system, "retriever": "dense", "encoder": encoder or "multilingual-e5-small"}
    rows = [(q, "AP", ap + d) for q, d in (("q1", -0.01), ("q2", 0.01))]
    write_run(root, "sw-en", system, {"q1": {"d": 1.0}}, pd.DataFrame(rows, columns=["query_id", "measure", "value"]),
              {"pair": "sw-en", "system": system, "measures": {"AP": ap}, "spec": spec,
               "options": {"profile": profile, "encoder": encoder}, "started_at": "2025-01-01T00:00:00Z"}, 10)


def test_check_never_compares_a_run_made_with_another_profile_or_spec(tmp_path):
    ci = tmp_path / "ci-runs"
    made_run(ci, "mdense", "ci")
    path = tmp_path / "expected.yaml"
    regress.update(path, ci)
    data = regress.load_expected(path)
    assert data["made_with"] == {"sw-en": {"mdense": {"profile": "ci", "spec": {
        "encoder": "multilingual-e5-small", "retriever": "dense", "system": "mdense"}}}}
    assert [v.status for v in regress.check(path, ci)] == [OK]

    full = tmp_path / "full-runs"
    made_run(full, "mdense", "full", ap=0.70)  # the full profile's run: not the ci numbers' configuration
    [verdict] = regress.check(path, full)
    assert (verdict.status, verdict.observed) == (SKIP, None)
    assert verdict.reason == "the run was made with profile full, the expected scores with ci: not compared"
    [named] = regress.check(path, full, systems=["mdense"])  # named: a run made otherwise is a FAIL
    assert named.status == FAIL and regress.exit_code([named]) == 1

    other = tmp_path / "other-encoder"
    made_run(other, "mdense", "ci", encoder="my/encoder", ap=0.40)
    [verdict] = regress.check(path, other)
    assert verdict.status == SKIP
    assert verdict.reason == "the run was made with another spec (encoder) than the expected scores: not compared"


def test_a_file_without_made_with_checks_as_before(runs, tmp_path):
    path = tmp_path / "expected.yaml"
    write_expected(path, "  sw-en:\n    bm25:\n      AP: 0.4\n")
    assert [v.status for v in regress.check(path, runs)] == [OK]


def test_the_committed_expected_scores_record_the_ci_configuration_of_todays_systems():
    # every row of reports/expected.yaml says it is the ci profile's run of the system as it is declared today:
    # a change to a system's spec (or a row without a record) must come with new expected scores
    import json
    from pathlib import Path

    from bench.systems import get_system
    from bench.systems.options import RunOptions

    data = regress.load_expected(Path(__file__).resolve().parents[1] / "reports" / "expected.yaml")
    ci = RunOptions.from_mapping({"profile": "ci"})
    for pair, systems in data["expected"].items():
        assert list(data["made_with"][pair]) == list(systems)
        for name in systems:
            spec = json.loads(json.dumps(get_system(name).spec_for(ci), sort_keys=True))
            assert data["made_with"][pair][name] == {"profile": "ci", "spec": spec}, name
