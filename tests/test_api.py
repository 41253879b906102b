"""The Python API: the README's example runs as written, and its numbers are the hand-computed ones.

On the tiny pair (tests/data/tiny-pair), BM25 on the raw query finds d1 for q1 ("paka mkeka"), only d3
for q2 ("mbwa", whose relevant documents are d2 and d3) and d4 for q3: AP 1, 1/2, 1 (MAP 5/6), RR 1
each. The human translations ("cat mat", "dog", "big house") find every relevant document first:
oracle-bm25 has AP 1 on every query.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import ir_datasets
import pandas as pd
import pytest

import bench
from bench.data.collection.local import load_pair_file
from bench.errors import BenchError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny-pair"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def in_repo_copy(tmp_path, monkeypatch):
    """A working directory laid out like the repository root (the example's relative paths)."""
    shutil.copytree(TINY, tmp_path / "tests" / "data" / "tiny-pair")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    """bm25 and oracle-bm25 on the tiny pair, run once for the tests below (own BENCH_HOME)."""
    home = tmp_path_factory.mktemp("api-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_HOME", str(home))
        yield bench.run(str(TINY / "pair.yaml"), systems="bm25,oracle-bm25", runs=home / "runs")


def test_the_readme_example_runs_and_says_what_it_should(in_repo_copy, bench_home, capsys):
    namespace = {}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), namespace)
    results, mine = namespace["results"], namespace["mine"]
    table = results.table()
    assert list(table.index) == ["bm25", "oracle-bm25"]
    assert table.loc["bm25", ("AP", "mean")] == pytest.approx(5 / 6)
    # bootstrap of the means of (1, 1/2, 1): all three 1/2 has probability 1/27 > 2.5%, all 1 is 8/27
    assert (table.loc["bm25", ("AP", "ci_low")], table.loc["bm25", ("AP", "ci_high")]) == pytest.approx((0.5, 1.0))
    assert table.loc["oracle-bm25", ("AP", "mean")] == pytest.approx(1.0)
    assert table.loc["oracle-bm25", ("RR@10", "ci_low")] == pytest.approx(1.0)
    top = results.top("bm25", "q2")
    assert list(top.columns) == ["rank", "doc_id", "score", "relevance", "title", "text"]
    assert top.drop(columns="score").values.tolist() == [[1, "d3", 1, "", "A cat and a dog met a mbwa."]]
    assert top["score"].tolist() == [results.run("bm25")["q2"]["d3"]]
    assert (in_repo_copy / "runs-example" / "xx-en" / "bm25" / "run.trec").is_file()
    # mine: q1 d1 first (AP 1), q2 d2 then d3 (AP 1), q3 d4 (AP 1)
    assert mine.table().loc["mine", ("AP", "mean")] == pytest.approx(1.0)
    both = (results + mine).compare("bm25", measures=["AP"])
    assert list(both["system"]) == ["oracle-bm25", "mine"] and set(both["reference"]) == {"bm25"}
    assert list(both["delta"]) == pytest.approx([1 / 6, 1 / 6])
    # the fused run (RRF, k 60) of bm25 and oracle-bm25, stored, and every stored run read again
    fused, stored = namespace["fused"], namespace["stored"]
    assert fused.systems == ["rrf-bm25-oracle-bm25"]
    # bm25 finds d1 for q1, d3 for q2, d4 for q3; oracle-bm25 ("cat mat", "dog", "big house") d1 then d3, d2 then
    # d3, d4: each document scores 1/(60 + its rank) in each run that has it
    run = fused.run("rrf-bm25-oracle-bm25")
    assert {q: list(docs) for q, docs in run.items()} == {"q1": ["d1", "d3"], "q2": ["d3", "d2"], "q3": ["d4"]}
    expected = {"q1": {"d1": 2 / 61, "d3": 1 / 62}, "q2": {"d3": 1 / 61 + 1 / 62, "d2": 1 / 61}, "q3": {"d4": 2 / 61}}
    assert all(run[q] == pytest.approx(expected[q], abs=1e-6) for q in expected)
    assert stored.systems == ["bm25", "oracle-bm25", "rrf-bm25-oracle-bm25"]
    assert stored.table().loc["bm25", ("AP", "mean")] == pytest.approx(5 / 6)
    out = capsys.readouterr().out
    assert "oracle-bm25" in out and "A cat and a dog met a mbwa." in out and "rrf-bm25-oracle-bm25" in out


def test_table_per_query_and_compare(tiny_results):
    per_query = tiny_results.per_query
    assert list(per_query.columns) == ["system", "query_id", "measure", "value"]
    bm25_ap = per_query[(per_query["system"] == "bm25") & (per_query["measure"] == "AP")]
    assert dict(zip(bm25_ap["query_id"], bm25_ap["value"])) == pytest.approx({"q1": 1.0, "q2": 0.5, "q3": 1.0})
    assert len(per_query) == 2 * 3 * 2  # systems x judged queries x measures (the pair's AP, RR@10)
    table = tiny_results.table()
    assert list(table.columns.get_level_values(0).unique()) == ["AP", "RR@10"]
    assert table.loc["bm25", ("RR@10", "mean")] == pytest.approx(1.0)
    compared = tiny_results.compare("bm25")
    ap = compared[compared["measure"] == "AP"].iloc[0]
    assert (ap["system"], ap["reference"], ap["mean"], ap["reference_mean"]) == (
        "oracle-bm25", "bm25", pytest.approx(1.0), pytest.approx(5 / 6))
    assert (ap["wins"], ap["ties"], ap["losses"]) == (1, 2, 0)
    # the only non-zero difference (q2, +1/2) gives the same |mean| under every sign flip: p = 8/8
    assert ap["p_randomization"] == pytest.approx(1.0)
    with pytest.raises(BenchError, match="baseline 'bm52' is not among"):
        tiny_results.compare("bm52")


def test_evaluate_a_trec_file_and_a_dict(tiny_results, tmp_path, bench_home):
    trec = tmp_path / "other-toolkit.trec"
    trec.write_text("q1 Q0 d3 1 2.0 x\nq1 Q0 d1 2 1.0 x\nq2 Q0 d2 1 1.0 x\nunknown Q0 d1 1 1.0 x\n")
    scored = bench.evaluate(TINY / "pair.yaml", trec)
    # q1: d1 at rank 2 (AP 1/2, RR 1/2); q2: d2 of d2, d3 (AP 1/2, RR 1); q3 unanswered (0, 0)
    assert scored.systems == ["other-toolkit"]
    assert scored.table().loc["other-toolkit", ("AP", "mean")] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert scored.table().loc["other-toolkit", ("RR@10", "mean")] == pytest.approx((0.5 + 1 + 0) / 3)
    assert not (tmp_path / "runs").exists()
    with pytest.raises(BenchError, match=r"none of the run's 1 query ids is a query of xx-en"):
        bench.evaluate(TINY / "pair.yaml", {"zz": {"d1": 1.0}})
    with pytest.raises(BenchError, match=r"run\['q1'\]\['d1'\] = 'high' is not a finite number"):
        bench.evaluate(TINY / "pair.yaml", {"q1": {"d1": "high"}})
    ndcg = bench.evaluate(load_pair_file(TINY / "pair.yaml"), {"q2": {"d3": 1.0}}, measures="nDCG@10")
    # q2: one of two relevant at rank 1: DCG 1, ideal 1 + 1/log2(3): 1 / 1.6309 = 0.6131; q1, q3 unanswered
    assert ndcg.measures == ["nDCG@10"]
    assert ndcg.table().loc["run", ("nDCG@10", "mean")] == pytest.approx(0.6131471927654584 / 3)
    with pytest.raises(BenchError, match="both results have a system 'bm25'"):
        tiny_results + tiny_results


def test_load_reads_the_stored_runs_and_top_shows_each_document(tmp_path, bench_home):
    """Two external runs stored by `bench eval`, read again by bench.load: top() rows by hand."""
    from bench.experiment import external

    runs = tmp_path / "runs"
    (tmp_path / "mine.trec").write_text("q1 Q0 d2 1 3.5 t\nq1 Q0 d1 2 2.25 t\nq1 Q0 d3 3 1 t\nq2 Q0 d3 1 0.5 t\n")
    (tmp_path / "other.trec").write_text("q1 Q0 d1 1 1 t\nq2 Q0 d2 1 1 t\nq3 Q0 d4 1 1 t\n")
    external.add_runs(load_pair_file(TINY / "pair.yaml"), [f"mine={tmp_path / 'mine.trec'}",
                                                          f"other={tmp_path / 'other.trec'}"], runs)
    results = bench.load(TINY / "pair.yaml", runs=runs)
    assert results.systems == ["mine", "other"] and results.paths == {"mine": runs / "xx-en" / "mine",
                                                                      "other": runs / "xx-en" / "other"}
    top = results.top("mine", "q1", k=2)
    assert list(top.columns) == ["rank", "doc_id", "score", "relevance", "title", "text"]
    assert top.values.tolist() == [[1, "d2", 3.5, 0, "", "Dogs bark loudly at night."],
                                   [2, "d1", 2.25, 1, "Cats", "The cat sat on the mat. Paka mkeka."]]
    assert results.top("mine", "q1", k=10)["doc_id"].tolist() == ["d2", "d1", "d3"]
    assert results.top("mine", "q3").empty  # a query of the pair that mine did not answer: no rows
    # AP of mine: q1 d1 at rank 2: 1/2; q2 d3 of d2, d3: 1/2; q3 unanswered: 0
    ap = results.per_query.query("system == 'mine' and measure == 'AP'")
    assert dict(zip(ap["query_id"], ap["value"])) == pytest.approx({"q1": 0.5, "q2": 0.5, "q3": 0.0})
    long = results.per_query
    long.loc[:, "value"] = 99.0  # a copy: the results are unchanged
    assert results.table().loc["mine", ("AP", "mean")] == pytest.approx(1 / 3)
    assert bench.load(TINY / "pair.yaml", runs=runs, systems="other").systems == ["other"]
    with pytest.raises(BenchError, match=r"^no run of 'zz' in these results \(one of: mine, other\)$"):
        results.top("zz", "q1")
    with pytest.raises(BenchError, match=r"^no query 'q9' in the results of mine: not a query of xx-en "
                                         r"\(give a query id of the pair \(e.g. q1, q2, q3\)\)$"):
        results.top("mine", "q9")
    with pytest.raises(BenchError, match=r"^k must be a positive integer, got 0"):
        results.top("mine", "q1", k=0)
    with pytest.raises(BenchError, match=r"^no stored run 'zz' of xx-en under .* \(stored runs: mine, other\)$"):
        bench.load(TINY / "pair.yaml", runs=runs, systems=["other", "zz"])
    with pytest.raises(BenchError, match=r"^runs .*typo: no such directory"):
        bench.load(TINY / "pair.yaml", runs=tmp_path / "typo")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match=r"^no stored run of xx-en under "):
        bench.load(TINY / "pair.yaml", runs=tmp_path / "empty")


def test_run_refuses_bad_options_before_running(bench_home, tmp_path):
    pair = str(TINY / "pair.yaml")
    with pytest.raises(BenchError, match=r"unknown run option 'encodr' \(did you mean encoder\?\)"):
        bench.run(pair, systems=["bm25"], runs=tmp_path / "runs", encodr="x")
    with pytest.raises(BenchError, match="no chosen system reads the option hybrid_weight"):
        bench.run(pair, systems=["bm25"], runs=tmp_path / "runs", hybrid_weight=0.3)
    with pytest.raises(BenchError, match="unknown measure"):
        bench.run(pair, systems=["bm25"], runs=tmp_path / "runs", measures=["ndcg@10"])
    with pytest.raises(BenchError, match="baseline 'oracle-bm25' is not among the chosen systems"):
        bench.run(pair, systems=["bm25"], runs=tmp_path / "runs", reports=tmp_path / "r", baseline="oracle-bm25")
    with pytest.raises(BenchError, match="unknown pair 'sw-n'"):
        bench.run("sw-n")
    assert not (tmp_path / "runs").exists()


def test_measures_replace_the_pairs_and_a_report_is_written(bench_home, tmp_path):
    results = bench.run(TINY / "pair.yaml", systems=["bm25"], runs=tmp_path / "runs", reports=tmp_path / "reports",
                        measures="P@1,R@2")
    assert results.measures == ["P@1", "R@2"]
    # P@1: every query's first document is relevant; R@2: q2 finds one of its two relevant documents
    assert results.table().loc["bm25", ("P@1", "mean")] == pytest.approx(1.0)
    assert results.table().loc["bm25", ("R@2", "mean")] == pytest.approx((1 + 0.5 + 1) / 3)
    assert tmp_path / "reports" / "xx-en.md" in results.reports
    assert "P@1" in (tmp_path / "reports" / "xx-en.md").read_text()


def test_bench_evaluate_is_the_api_function_and_scoring_is_its_own_module():
    from bench import api
    from bench.results import scoring

    assert bench.evaluate is api.evaluate and bench.run is api.run and bench.Results is api.Results
    assert scoring.per_query.__module__ == "bench.results.scoring" and not callable(scoring)


def test_import_bench_is_light_and_registers_the_datasets():
    code = ("import bench, sys, ir_datasets; ds = ir_datasets.load('afriqa/sw-en/test'); "
            "print('torch' in sys.modules, type(ds).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "Dataset"]


def test_bench_datasets_answer_the_ir_datasets_api(bench_home):
    pair = load_pair_file(TINY / "pair.yaml")
    dataset = ir_datasets.load(pair.dataset_id)
    assert (dataset.queries_count(), dataset.docs_count(), dataset.qrels_count()) == (3, 4, 4)
    store = dataset.docs_store()
    assert store.get("d2").text == "Dogs bark loudly at night."
    assert list(store.get_many(["d4", "nope", "d1"])) == ["d4", "d1"]
    assert store.get("d1", "title") == "Cats"
    with pytest.raises(KeyError):
        store.get("nope")


@pytest.mark.integration
def test_afriqa_counts_through_ir_datasets(real_data):
    dataset = ir_datasets.load("afriqa/sw-en/test")
    assert (dataset.queries_count(), dataset.docs_count(), dataset.qrels_count()) == (294, 5414, 294)
    qrel = next(dataset.qrels_iter())
    assert dataset.docs_store().get(qrel.doc_id).doc_id == qrel.doc_id
    assert isinstance(pd.DataFrame(list(dataset.queries_iter())[:2]), pd.DataFrame)
