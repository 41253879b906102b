import math
from pathlib import Path

import pandas as pd
import pytest

from bench.results.scoring import means, per_query
from bench.errors import BenchError
from cli_run import run_main

QRELS = {"q1": {"d1": 1, "d3": 1}, "q2": {"d5": 1}, "q3": {}}
RUN = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q9": {"d1": 1.0}}  # q2 unanswered, q9 unjudged


def test_per_query_values_computed_by_hand():
    table = per_query(RUN, QRELS, ["AP", "RR@10", "nDCG@10", "R@100"])
    got = {(r.query_id, r.measure): r.value for r in table.itertuples()}
    assert got[("q1", "AP")] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert got[("q1", "RR@10")] == 1.0
    ideal = 1 + 1 / math.log2(3)
    assert got[("q1", "nDCG@10")] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert got[("q1", "R@100")] == 1.0
    # a judged query missing from the run scores 0; unjudged queries are not scored at all
    assert all(got[("q2", m)] == 0.0 for m in ("AP", "RR@10", "nDCG@10", "R@100"))
    assert {q for q, _ in got} == {"q1", "q2"}


def test_means_counts_unanswered_queries():
    scores = means(per_query(RUN, QRELS, ["AP"]))
    assert scores["AP"] == pytest.approx((1 + 2 / 3) / 2 / 2)


def test_means_keep_the_measures_in_the_order_first_seen():
    table = pd.DataFrame([("q1", "nDCG@10", 0.5), ("q1", "AP", 0.2), ("q2", "nDCG@10", 1.0), ("q2", "AP", 0.4)],
                         columns=["query_id", "measure", "value"])
    assert list(means(table).items()) == [("nDCG@10", 0.75), ("AP", pytest.approx(0.3))]


def test_unknown_measure_is_a_clear_error():
    with pytest.raises(BenchError, match="unknown measure"):
        per_query(RUN, QRELS, ["MAPP@x"])


# --- bench eval --measures, and bench report re-scoring stored runs (issue 25) -------------------------

TINY = Path(__file__).parent / "data" / "tiny-pair"  # qrels: q1 -> d1; q2 -> d2, d3; q3 -> d4
# mine: P@2 1/2, 1/2, 0 (d3 of q2 in its top 2, d2 not retrieved); AP 1/2, (1/1)/2, 0
MINE = "q1 Q0 d2 1 3.0 x\nq1 Q0 d1 2 2.0 x\nq2 Q0 d3 1 5.0 x\nq2 Q0 d4 2 4.0 x\nq3 Q0 d1 1 1.0 x\n"
# other: P@2 1/2, 1, 0; AP 1, 1, 0; RR@10 1, 1, 0
OTHER = "q1 Q0 d1 1 2.0 x\nq1 Q0 d2 2 1.0 x\nq2 Q0 d2 1 2.0 x\nq2 Q0 d3 2 1.0 x\nq3 Q0 d1 1 1.0 x\n"


def stored_values(run_dir: Path, measure: str) -> dict[str, float]:
    table = pd.read_csv(run_dir / "perquery.csv", dtype={"query_id": str})
    return table[table["measure"] == measure].set_index("query_id")["value"].to_dict()


@pytest.fixture
def two_runs(tmp_path, bench_home, monkeypatch, capsys):
    """`other` stored with the pair's measures (AP, RR@10), then `mine` with `bench eval --measures P@2`."""
    (tmp_path / "mine.trec").write_text(MINE)
    (tmp_path / "other.trec").write_text(OTHER)
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    code, _, err = run_main(monkeypatch, capsys, "eval", "--pair-file", str(TINY / "pair.yaml"), "--run",
                            f"other={tmp_path / 'other.trec'}", "--runs", str(runs), "--no-report")
    assert code == 0, err
    code, out, err = run_main(monkeypatch, capsys, "eval", "--pair-file", str(TINY / "pair.yaml"), "--run",
                              f"mine={tmp_path / 'mine.trec'}", "--measures", "P@2", "--runs", str(runs),
                              "--reports", str(reports))
    assert code == 0, err
    return runs, reports, out


def test_eval_measures_scores_the_run_with_them_and_the_report_scores_the_others(two_runs):
    runs, reports, out = two_runs
    assert stored_values(runs / "xx-en" / "mine", "P@2") == pytest.approx({"q1": 0.5, "q2": 0.5, "q3": 0.0})
    assert stored_values(runs / "xx-en" / "mine", "AP") == {}  # scored with the chosen measures only
    assert "P@2" in out and "0.3333" in out
    # the report shows P@2 for every run: other's computed from its run.trec, its stored files unchanged
    table = pd.read_csv(reports / "xx-en.perquery.csv", dtype={"query_id": str})
    assert set(table["measure"]) == {"P@2"}
    other = table[table["system"] == "other"].set_index("query_id")["value"].to_dict()
    assert other == pytest.approx({"q1": 0.5, "q2": 1.0, "q3": 0.0})
    assert stored_values(runs / "xx-en" / "other", "P@2") == {}
    assert stored_values(runs / "xx-en" / "other", "AP") == pytest.approx({"q1": 1.0, "q2": 1.0, "q3": 0.0})
    md = (reports / "xx-en.md").read_text()
    assert "| mine (baseline, external) | 0.333 [" in md and "| other (external) | **0.500** [" in md  # by name
    assert "(the stored runs hold other measures and are unchanged): other: P@2." in md


def test_report_chosen_systems_baseline_measures_and_formats(two_runs, tmp_path, monkeypatch, capsys):
    runs, _, _ = two_runs
    before = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()}
    out_dir = tmp_path / "paper"
    code, out, err = run_main(monkeypatch, capsys, "report", "--runs", str(runs), "--reports", str(out_dir),
                              "--pair-file", str(TINY / "pair.yaml"), "--systems", "mine,other", "--baseline", "mine",
                              "--measures", "AP,P@2", "--format", "csv,latex")
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["xx-en.perquery.csv", "xx-en.summary.csv", "xx-en.tex"]
    assert "leaderboard left as it was" in out
    # AP: mine 1/3 (computed), other 2/3 (stored); P@2: mine 1/3 (stored), other 1/2 (computed); 3 queries:
    # every assignment enumerated. AP: d = other - mine = (1/2, 1/2, 0): |mean| reached by 2 of 4 sign choices
    # of the two halves, p = 4/8; P@2: d = (0, 1/2, 0): reached by all, p = 1
    assert (out_dir / "xx-en.summary.csv").read_text().splitlines() == [
        "system,role,seeds,AP,P@2,AP p_randomization,AP p_holm,P@2 p_randomization,P@2 p_holm",
        "mine,baseline;external,1,0.333333,0.333333,,,,",
        "other,external,1,0.666667,0.5,0.5,0.5,1,1"]
    assert {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()} == before  # stored runs untouched


@pytest.mark.parametrize("args, message", [
    (["--systems", "mine,othr"], "error: no run of system 'othr' on xx-en under {runs} (did you mean other?)"),
    (["--systems", "mine", "--baseline", "other"],
     "error: --baseline other is not among --systems (mine) (add it to --systems, or choose one of them as the "
     "baseline)"),
    (["--baseline", "nope"], "error: baseline 'nope' has no complete run on xx-en (choose one of: mine, other)"),
    (["--format", "md,pdf"], "error: unknown report format 'pdf' (choose among: md, html, latex, csv)"),
    (["--pair", "xx-em"], "error: no complete run of pair xx-em under {runs} (did you mean xx-en?)"),
    (["--measures", "P@2"], "error: the runs of xx-en need its qrels to be scored with other measures, and xx-en is "
                            "not a built-in pair (give its pair file: --pair-file PATH)"),
])
def test_report_refuses_bad_choices_in_one_line_writing_nothing(two_runs, tmp_path, monkeypatch, capsys, args,
                                                                message):
    runs, _, _ = two_runs
    out_dir = tmp_path / "paper"
    code, _, err = run_main(monkeypatch, capsys, "report", "--runs", str(runs), "--reports", str(out_dir), *args)
    assert code == 2 and err.strip() == message.format(runs=runs)
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_report_refuses_an_unknown_measure_before_any_work(two_runs, tmp_path, monkeypatch, capsys):
    runs, _, _ = two_runs
    code, _, err = run_main(monkeypatch, capsys, "report", "--runs", str(runs), "--reports", str(tmp_path / "p"),
                            "--measures", "AP,MAPP")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "MAPP" in err
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


def test_equal_scores_are_ranked_one_way_everywhere():
    # d1 and d2 tie: trec_eval's order (doc id descending) puts d2 first, for every measure, in the TREC
    # file's ranks, the top of a run and the ranks RRF adds (ir-measures' providers alone disagree: its AP
    # ranked d2 first and its RR@10 d1 first)
    from bench.methods.retrieve.fusion import rrf
    from bench.methods.retrieve.ranking import top_k
    from bench.results.order import ranked
    from bench.results.runs import format_trec
    from bench.results.scoring import per_query

    run = {"q1": {"d1": 1.0, "d2": 1.0, "d3": 0.5}}
    assert ranked(run["q1"]) == [("d2", 1.0), ("d1", 1.0), ("d3", 0.5)]
    table = per_query(run, {"q1": {"d1": 1}}, ["AP", "RR@10", "P@1"])
    assert table["value"].tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert format_trec(run, "t").splitlines()[:2] == ["q1 Q0 d2 1 1.000000 t", "q1 Q0 d1 2 1.000000 t"]
    assert top_k(run, 1) == {"q1": ["d2"]}
    assert rrf([run], [1.0], k=1)["q1"] == pytest.approx({"d2": 1 / 2, "d1": 1 / 3, "d3": 1 / 4})
