"""External runs: `bench eval` (and `bench run --run`) score a run file made elsewhere with ir-measures,
store it like a built-in system's run, and refuse a malformed file in one line, storing nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import ir_measures
import pandas as pd
import pytest

from bench.experiment import external

from bench.results import regress, report
from bench.errors import BenchError
from bench.results.runs import QUERIES_FILE, load_runs, read_queries
from bench.infra.digests import sha256_file
from cli_run import run_main

TINY = Path(__file__).parent / "data" / "tiny-pair"
# written by hand for the tiny pair (qrels: q1 -> d1; q2 -> d2, d3; q3 -> d4), best first per query
RUN = """\
q1 Q0 d2 1 3.0 other-toolkit
q1 Q0 d1 2 2.0 other-toolkit
q2 Q0 d3 1 5.0 other-toolkit
q2 Q0 d4 2 4.0 other-toolkit
q2 Q0 d2 3 3.5 other-toolkit
q3 Q0 dX 1 1.0 other-toolkit
q3 Q0 d4 2 0.5 other-toolkit
"""
# AP by hand: q1: d1 at rank 2 -> 1/2; q2: d3 at 1, d2 at 3 -> (1/1 + 2/3) / 2 = 5/6; q3: d4 at 2 -> 1/2
AP = {"q1": 0.5, "q2": 5 / 6, "q3": 0.5}
RR = {"q1": 0.5, "q2": 1.0, "q3": 0.5}


def qrels_of(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, rel = line.split()
        qrels.setdefault(qid, {})[doc] = int(rel)
    return qrels


@pytest.fixture
def run_file(tmp_path) -> Path:
    path = tmp_path / "mine.trec"
    path.write_text(RUN)
    return path


def test_eval_scores_a_run_like_ir_measures_and_stores_it(monkeypatch, capsys, tmp_path, bench_home, run_file, caplog):
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    code, out, err = run_main(monkeypatch, capsys, "eval", "--pair-file", str(TINY / "pair.yaml"),
                              "--run", f"mine={run_file}", "--runs", str(runs), "--reports", str(reports))
    assert code == 0, err
    stored = pd.read_csv(runs / "xx-en" / "mine" / "perquery.csv", dtype={"query_id": str})
    ap = stored[stored["measure"] == "AP"].set_index("query_id")["value"].to_dict()
    assert ap == pytest.approx(AP)
    assert stored[stored["measure"] == "RR@10"].set_index("query_id")["value"].to_dict() == pytest.approx(RR)
    # the same numbers as ir_measures on the same qrels and the original file
    expected = ir_measures.calc_aggregate([ir_measures.AP, ir_measures.RR @ 10], qrels_of(TINY / "qrels.txt"),
                                          ir_measures.read_trec_run(str(run_file)))
    assert stored.groupby("measure")["value"].mean().to_dict() == pytest.approx(
        {str(m): v for m, v in expected.items()})
    assert sum(AP.values()) / 3 == pytest.approx(0.6111, abs=1e-4)
    assert "mine" in out and "0.6111" in out and "0.6667" in out  # the final table

    manifest = json.loads((runs / "xx-en" / "mine" / "manifest.json").read_text())
    assert manifest["external"] is True and manifest["system"] == "mine"
    assert manifest["source"] == {"path": str(run_file.resolve()), "sha256": sha256_file(run_file), "lines": 7,
                                  "format": "trec", "gzip": False}
    assert manifest["n_unknown_docs"] == 1 and manifest["unknown_docs_examples"] == ["dX"]
    assert manifest["pair_info"]["name"] == "xx-en" and manifest["pair_info"]["query_lang"] == "xx"
    assert manifest["measures"] == pytest.approx({"AP": 0.6111111, "RR@10": 0.6666667})
    assert manifest["n_queries"] == 3 and manifest["depth"] == 3
    assert read_queries(runs / "xx-en" / "mine")["q1"] == {"text": "paka mkeka", "translation": "cat mat",
                                                           "system_translation": ""}
    # the stored run.trec ranks by score, and reads back as the same run
    assert (runs / "xx-en" / "mine" / "run.trec").read_text().splitlines()[0] == "q1 Q0 d2 1 3.000000 mine"
    assert "not in xx-en" in err or "not in xx-en" in caplog.text  # the unknown document: a warning
    md = (reports / "xx-en.md").read_text()
    assert "| mine |" in md and "0.611" in md


def test_external_runs_take_part_in_reports_leaderboard_and_check(tmp_path, bench_home, run_file):
    from bench.data.collection.local import load_pair_file

    pair = load_pair_file(TINY / "pair.yaml")
    worse = tmp_path / "worse.trec"
    worse.write_text("q1 Q0 d4 1 1 x\nq2 Q0 d1 1 1 x\nq3 Q0 d4 1 1 x\n")  # AP 0, 0, 1
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    results = external.add_runs(pair, [f"mine={run_file}", f"worse={worse}"], runs)
    assert [r.system for r in results] == ["mine", "worse"]
    assert {r.system: r.means["AP"] for r in results} == pytest.approx({"mine": 0.6111111, "worse": 1 / 3})
    assert [r.system for r in load_runs(runs, "xx-en")] == ["mine", "worse"]
    built = report.build_pair_report("xx-en", runs, n_resamples=1000)
    assert built.baseline == "mine" and built.row("worse", "AP")["delta"] == pytest.approx(1 / 3 - 0.6111111)
    # d = worse - mine = (-1/2, -5/6, +1/2), |sum d| = 5/6; of the 2**3 sign flips, |±1/2 ± 5/6 ± 1/2| >= 5/6
    # for the 4 where the two halves cancel and the 2 where all agree: p = 6/8
    assert built.row("worse", "AP")["p_randomization"] == pytest.approx(0.75)
    report.write_leaderboard(runs, reports, n_resamples=1000)
    board = json.loads((reports / "leaderboard.json").read_text())
    assert {(e["system"], e["external"]) for e in board["entries"]} == {("mine", True), ("worse", True)}
    expected = tmp_path / "expected.yaml"
    expected.write_text("version: 1\ntolerance: 0.005\nexpected:\n  xx-en:\n    mine:\n      AP: 0.6111\n"
                        "    bm25:\n      AP: 0.8333\n")
    verdicts = regress.check(expected, runs)
    assert [(v.system, v.status) for v in verdicts] == [("mine", regress.OK), ("bm25", regress.SKIP)]
    assert regress.exit_code(verdicts) == 0


@pytest.mark.parametrize("text, message", [
    ("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 1.0\n", ":2: expected 6 columns, got 5"),
    ("q1 Q0 d1 1 high t\n", ":1: score 'high' is not a number"),
    ("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 nan t\n", ":2: score 'nan' is not a finite number"),
    ("q1 Q0 d1 1 2.0 t\n\nq9 Q0 d2 1 1.0 t\n", ":3: unknown query id 'q9': not a query of xx-en"),
    ("q1 Q0 d1 1 2.0 t\nq2 Q0 d1 1 2.0 t\nq1 Q0 d1 2 1.0 t\n",
     ":3: document 'd1' appears twice for query 'q1' (first on line 1)"),
    ("", ": the run file has no lines"),
    (b"q1 Q0 d1 1 2.0 t\nq2 Q0 d\xff 1 2.0 t\n", ":2: not UTF-8"),
    ("q1 Q0 d1 1\n", ":1: expected 6 columns (TREC) or 3 (MS MARCO), got 4: 'q1 Q0 d1 1' (a TREC run's lines are "
     "'query_id Q0 doc_id rank score tag', an MS MARCO run's 'query_id doc_id rank')"),
    ("q1\td1\t1\nq1\td2\n", ":2: expected 3 columns, got 2: 'q1\\td2' (each line is 'query_id doc_id rank'"),
    ("q1\td1\t1\nq1 Q0 d2 2 1.0 t\n", ":2: expected 3 columns, got 6"),
    ("q1\td1\t1\nq1\td2\tsecond\n", ":2: rank 'second' is not an integer (each line is 'query_id doc_id rank'"),
    ("q1\td1\t0\n", ":1: rank '0' is not 1 or more"),
    ("q1\td1\t1\nq1\td1\t2\n", ":2: document 'd1' appears twice for query 'q1' (first on line 1)"),
    (gzip.compress(b"q1 Q0 d1 1 2.0 t\n\nq1 Q0 d2 2 x t\n"), ":3: score 'x' is not a number"),
    (gzip.compress(b"q1\td1\t1\nq9\td2\t1\n"), ":2: unknown query id 'q9': not a query of xx-en"),
    (gzip.compress("".join(f"q1 Q0 d{i} {i} 1.0 t\n" for i in range(1, 500)).encode())[:-12],
     ": the gzip stream is damaged after line "),
])
def test_a_malformed_run_is_one_line_and_stores_nothing(monkeypatch, capsys, tmp_path, bench_home, run_file,
                                                        text, message):
    bad = tmp_path / "bad.trec"
    bad.write_bytes(text if isinstance(text, bytes) else text.encode())
    runs = tmp_path / "runs"
    # a good run first: it is not stored either, since every run is validated before the first is written
    code, out, err = run_main(monkeypatch, capsys, "eval", "--pair-file", str(TINY / "pair.yaml"),
                              "--run", f"good={run_file}", "--run", f"bad={bad}", "--runs", str(runs),
                              "--reports", str(tmp_path / "reports"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {bad}{message}")
    assert not runs.exists() and not (tmp_path / "reports").exists()


# RUN in pyserini's MS MARCO format: query, document, rank (the same order per query)
MSMARCO = "".join(f"{q}\t{d}\t{r}\n" for q, _, d, r, _, _ in (line.split() for line in RUN.splitlines()))


def test_gzip_and_msmarco_runs_score_like_the_trec_run(monkeypatch, capsys, tmp_path, bench_home, run_file, caplog):
    files = {"gz": tmp_path / "mine.trec.gz", "gzip-no-suffix": tmp_path / "gzipped.trec",
             "plain-gz-suffix": tmp_path / "plain.trec.gz", "msmarco": tmp_path / "mine.tsv",
             "msmarco-gz": tmp_path / "mine.tsv.gz"}
    files["gz"].write_bytes(gzip.compress(RUN.encode()))
    files["gzip-no-suffix"].write_bytes(gzip.compress(RUN.encode()))  # told by its first bytes, not its name
    files["plain-gz-suffix"].write_text(RUN)  # a name ending in .gz does not make it compressed
    files["msmarco"].write_text(MSMARCO)
    files["msmarco-gz"].write_bytes(gzip.compress(MSMARCO.encode()))
    runs = tmp_path / "runs"
    specs = [a for name, path in [("trec", run_file), *files.items()] for a in ("--run", f"{name}={path}")]
    code, _, err = run_main(monkeypatch, capsys, "eval", "--pair-file", str(TINY / "pair.yaml"), *specs,
                            "--runs", str(runs), "--no-report")
    assert code == 0, err

    def stored(name):
        return pd.read_csv(runs / "xx-en" / name / "perquery.csv", dtype={"query_id": str})

    ap = stored("trec").query("measure == 'AP'").set_index("query_id")["value"].to_dict()
    assert ap == pytest.approx(AP)
    for name in files:
        pd.testing.assert_frame_equal(stored(name), stored("trec"))
    formats = {name: json.loads((runs / "xx-en" / name / "manifest.json").read_text())["source"]
               for name in ["trec", *files]}
    assert {n: (f["format"], f["gzip"]) for n, f in formats.items()} == {
        "trec": ("trec", False), "gz": ("trec", True), "gzip-no-suffix": ("trec", True),
        "plain-gz-suffix": ("trec", False), "msmarco": ("msmarco", False), "msmarco-gz": ("msmarco", True)}
    assert formats["gz"]["sha256"] == sha256_file(files["gz"])  # the file as given
    # the MS MARCO run's scores are -rank, and a warning says so
    assert (runs / "xx-en" / "msmarco" / "run.trec").read_text().splitlines()[:2] == [
        "q1 Q0 d2 1 -1.000000 msmarco", "q1 Q0 d1 2 -2.000000 msmarco"]
    said = [r.getMessage() for r in caplog.records if "MS MARCO" in r.getMessage()]
    assert said == [f"{files[n]}: an MS MARCO run (query_id, doc_id, rank): its scores are derived from the ranks "
                    "(score = -rank, descending with the rank)" for n in ("msmarco", "msmarco-gz")]
    # the API reads run files the same way
    import bench

    scored = bench.evaluate(TINY / "pair.yaml", files["msmarco-gz"])
    assert scored.systems == ["mine"]  # the file's name without .gz and its suffix
    assert scored.table().loc["mine", ("AP", "mean")] == pytest.approx(sum(AP.values()) / 3)


@pytest.mark.parametrize("spec, message", [
    ("bm25={run}", "run name 'bm25' is a built-in system"),
    ("../up={run}", "run name '../up' is not a valid directory name"),
    (".hidden={run}", "run name '.hidden' is not a valid directory name"),
    ("a/b={run}", "run name 'a/b' is not a valid directory name"),
    ("{run}", "is not NAME=PATH"),
    ("mine=", "is not NAME=PATH"),
    ("mine={run}.missing", "cannot read run file"),
])
def test_bad_run_names_and_paths(monkeypatch, capsys, tmp_path, bench_home, run_file, spec, message):
    code, _, err = run_main(monkeypatch, capsys, "eval", "--pair-file", str(TINY / "pair.yaml"),
                            "--run", spec.format(run=run_file), "--runs", str(tmp_path / "runs"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "runs").exists()


def test_names_twice_and_never_over_a_run_bench_made(tmp_path, bench_home, run_file):
    from bench.data.collection.local import load_pair_file
    from bench.results.runs import write_run

    pair = load_pair_file(TINY / "pair.yaml")
    with pytest.raises(BenchError, match="--run names 'a' twice"):
        external.prepare(pair, [f"a={run_file}", f"a={run_file}"], tmp_path / "runs")
    write_run(tmp_path / "runs", "xx-en", "mine", {"q1": {"d1": 1.0}}, pd.DataFrame(
        [("q1", "AP", 1.0)], columns=["query_id", "measure", "value"]), {"pair": "xx-en", "system": "mine"}, 10)
    with pytest.raises(BenchError, match="holds a run bench made"):
        external.prepare(pair, [f"mine={run_file}"], tmp_path / "runs")
    assert external.add_runs(pair, [f"mine2={run_file}"], tmp_path / "runs")[0].system == "mine2"
    external.add_runs(pair, [f"mine2={run_file}"], tmp_path / "runs")  # an external run may be replaced


def test_eval_needs_a_run(monkeypatch, capsys, bench_home):
    code, _, err = run_main(monkeypatch, capsys, "eval", "--pair-file", str(TINY / "pair.yaml"))
    assert code == 2 and err.strip() == ("error: give at least one --run NAME=PATH "
                                         "(e.g. bench eval --pair sw-en --run mine=run.trec)")


def test_bench_run_takes_external_runs_too(monkeypatch, capsys, tmp_path, bench_home, run_file):
    import bench.experiment.runner

    calls = []
    made = [bench.experiment.runner.RunResult("oracle-bm25", tmp_path, {"AP": 1.0, "RR@10": 1.0}, 0.5),
            bench.experiment.runner.RunResult("bm25", tmp_path, {"AP": 0.8333, "RR@10": 1.0}, 1.5)]
    monkeypatch.setattr(bench.experiment.runner, "run_systems",
                        lambda *a, **k: calls.append(a) or list(made))  # no Lucene
    bad = tmp_path / "bad.trec"
    bad.write_text("q1 Q0 d1 1 2.0\n")
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "bm25",
                            "--run", f"bad={bad}", "--runs", str(tmp_path / "runs"))
    assert code == 2 and f"{bad}:1: expected 6 columns (TREC) or 3 (MS MARCO), got 5" in err
    assert calls == []  # refused before any system ran
    code, out, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "bm25",
                              "--run", f"mine={run_file}", "--runs", str(tmp_path / "runs"), "--no-report")
    assert code == 0, err
    assert len(calls) == 1 and (tmp_path / "runs" / "xx-en" / "mine" / QUERIES_FILE).exists()
    assert next(line for line in out.splitlines() if line.startswith("mine")).split()[1:3] == ["0.6111", "0.6667"]
    table = out[out.index("system "):].splitlines()
    assert [line.split()[0] for line in table[1:4]] == ["bm25", "oracle-bm25", "mine"]  # the report's order


def test_check_only_the_systems_asked_for(monkeypatch, capsys, tmp_path, bench_home, run_file):
    from bench.data.collection.local import load_pair_file

    external.add_runs(load_pair_file(TINY / "pair.yaml"), [f"mine={run_file}"], tmp_path / "runs")
    expected = tmp_path / "expected.yaml"
    expected.write_text("version: 1\ntolerance: 0.005\nexpected:\n  xx-en:\n    mine:\n      AP: 0.6111\n"
                        "    bm25:\n      AP: 0.8333\n")
    args = ["check", "--expected", str(expected), "--runs", str(tmp_path / "runs")]
    code, out, _ = run_main(monkeypatch, capsys, *args)
    tail = "; a row FAILs when worse than expected by more than its tolerance"
    no_run = tmp_path / "runs" / "xx-en" / "bm25"
    assert code == 0 and out.splitlines()[1] == f"SKIP   1 rows of 1 systems (xx-en/bm25): no run in {no_run}"
    assert out.splitlines()[-1] == "1 OK, 0 OKISH, 0 FAIL, 1 SKIP" + tail
    code, out, _ = run_main(monkeypatch, capsys, *args, "--systems", "mine")
    assert code == 0 and out.splitlines() == [out.splitlines()[0], "1 OK, 0 OKISH, 0 FAIL" + tail]
    code, out, _ = run_main(monkeypatch, capsys, *args, "--systems", "mine,bm25")
    assert code == 1 and out.splitlines()[1].startswith("FAIL   xx-en  bm25  AP")
