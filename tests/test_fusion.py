"""Score fusion: CombSUM of min-max normalised runs and reciprocal rank fusion, values computed by hand; `bench fuse`
(stored runs of a pair fused into a stored, reported run), the same CombSUM as the built-in hybrids, and its errors
(one line, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.data.collection.local import load_pair_file
from bench.errors import BenchError
from bench.experiment import external
from bench.methods.retrieve.fusion import RRF_K, combsum, fuse, minmax, rrf
from bench.results.runs import MANIFEST_FILE, format_trec, load_run, read_trec, write_run
from cli_run import run_main

TINY = Path(__file__).parent / "data" / "tiny-pair"


def test_minmax_per_query():
    assert minmax({"q": {"a": 10.0, "b": 6.0, "c": 2.0}, "r": {"x": 0.3, "y": 0.3}, "s": {}}) == {
        "q": {"a": 1.0, "b": 0.5, "c": 0.0}, "r": {"x": 1.0, "y": 1.0}, "s": {}}


def test_weighted_sum_missing_documents_and_depth():
    bm25 = {"q": {"a": 10.0, "b": 6.0, "c": 2.0}}  # normalised: a 1, b .5, c 0
    dense = {"q": {"b": 0.9, "d": 0.7, "a": 0.5}}  # normalised: b 1, d .5, a 0
    fused = combsum([dense, bm25], [0.6, 0.4], depth=3)
    # a: .4·1 = .4; b: .6·1 + .4·.5 = .8; d: .6·.5 = .3; c: 0 (cut at depth 3)
    assert list(fused["q"]) == ["b", "a", "d"]
    assert fused["q"] == pytest.approx({"b": 0.8, "a": 0.4, "d": 0.3})


def test_ties_are_broken_by_document_id_descending_as_trec_eval_does():
    fused = combsum([{"q": {"m": 1.0, "z": 1.0}}], [1.0])
    assert list(fused["q"]) == ["z", "m"]
    with pytest.raises(BenchError, match=r"^2 weight\(s\) for 1 run\(s\) \(give one weight per run"):
        combsum([{"q": {}}], [0.5, 0.5])


# run A ranks a 1, b 2, c 3; run B ranks c 1, then d and a tie at 0.5: d 2, a 3 (ties by document id, descending)
RUN_A = {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}
RUN_B = {"q": {"c": 0.9, "d": 0.5, "a": 0.5}}


def test_rrf_by_hand():
    fused = rrf([RUN_A, RUN_B], [1.0, 1.0])
    assert RRF_K == 60
    # a: 1/61 + 1/63 and c: 1/63 + 1/61 tie, as do b: 1/62 and d: 1/62: each pair by document id, descending
    assert list(fused["q"]) == ["c", "a", "d", "b"]
    assert fused["q"] == pytest.approx({"a": 1 / 61 + 1 / 63, "c": 1 / 63 + 1 / 61, "b": 1 / 62, "d": 1 / 62})
    # weighted, k = 1: a .5/2 + 2/4 = .75; b .5/3; c .5/4 + 2/2 = 1.125; d 2/3; depth 3 drops b
    weighted = fuse("rrf", [RUN_A, RUN_B], [0.5, 2.0], depth=3, k=1)
    assert list(weighted["q"]) == ["c", "a", "d"]
    assert weighted["q"] == pytest.approx({"c": 1.125, "a": 0.75, "d": 2 / 3})
    # a document that one run lacks contributes 0 from it; a query of one run only is fused from that run
    assert rrf([{"q": {"x": 1.0}}, {"r": {"y": 1.0}}], [1.0, 1.0], k=1) == {"q": {"x": 0.5}, "r": {"y": 0.5}}


@pytest.mark.parametrize("call, message", [
    (lambda: rrf([RUN_A, RUN_B], [1.0]),
     r"^1 weight\(s\) for 2 run\(s\) \(give one weight per run, in the runs' order\)$"),
    (lambda: rrf([RUN_A, RUN_B], [1.0, -0.5]), r"^weight -0.5 is negative \(weights are 0 or more\)$"),
    (lambda: rrf([RUN_A, RUN_B], [0, 0.0]), r"^every weight is 0: the fused run would score every document 0"),
    (lambda: rrf([RUN_A, RUN_B], [1.0, 1.0], k=0), r"^the RRF constant k must be a positive number, not 0 "),
    (lambda: rrf([RUN_A], [1.0], k=-5.5), r"^the RRF constant k must be a positive number, not -5.5 "),
    (lambda: fuse("borda", [RUN_A], [1.0]), r"^unknown fusion method 'borda' \(one of: combsum, rrf\)$"),
])
def test_bad_weights_k_and_method_are_errors(call, message):
    with pytest.raises(BenchError, match=message):
        call()


# --- bench fuse: stored runs of the tiny pair (qrels: q1 -> d1; q2 -> d2, d3; q3 -> d4) ------------------------------

LEXICAL = {"q1": {"d2": 4.0, "d1": 3.0, "d3": 1.0}, "q2": {"d3": 6.0, "d4": 2.0}, "q3": {"d4": 2.5, "d1": 0.5}}
DENSE = {"q1": {"d1": 0.75, "d4": 0.5}, "q2": {"d2": 0.9, "d1": 0.3, "d3": 0.25},
         "q3": {"d1": 0.8, "d2": 0.7, "d4": 0.6}}


def _trec(run: dict, path: Path) -> Path:
    path.write_text(format_trec(run, "other-toolkit"))
    return path


@pytest.fixture
def stored(tmp_path, bench_home) -> Path:
    """The runs root holding two external runs of the tiny pair, ``lexical`` and ``dense``."""
    runs = tmp_path / "runs"
    external.add_runs(load_pair_file(TINY / "pair.yaml"), [f"lexical={_trec(LEXICAL, tmp_path / 'l.trec')}",
                                                          f"dense={_trec(DENSE, tmp_path / 'd.trec')}"], runs)
    return runs


def _fuse(monkeypatch, capsys, runs: Path, *args: str):
    return run_main(monkeypatch, capsys, "fuse", "--pair-file", str(TINY / "pair.yaml"), "--runs", str(runs), *args)


def test_bench_fuse_rrf_stores_a_run_with_its_manifest_and_reports_it(monkeypatch, capsys, tmp_path, stored):
    reports = tmp_path / "reports"
    code, out, err = _fuse(monkeypatch, capsys, stored, "--inputs", "lexical,dense", "--method", "rrf",
                           "--reports", str(reports))
    assert code == 0, err
    path = stored / "xx-en" / "rrf-lexical-dense"
    fused = read_trec(path / "run.trec")
    # q1: d1 1/62 + 1/61 (best), d2 1/61, d4 1/62, d3 1/63; q2: d3 1/61 + 1/63, d2 1/61, d4 1/62, d1 1/62
    assert fused["q1"] == pytest.approx({"d1": 1 / 62 + 1 / 61, "d2": 1 / 61, "d4": 1 / 62, "d3": 1 / 63}, abs=1e-6)
    assert (path / "run.trec").read_text().splitlines()[:2] == ["q1 Q0 d1 1 0.032522 rrf-lexical-dense",
                                                              "q1 Q0 d2 2 0.016393 rrf-lexical-dense"]
    assert list(fused["q2"]) == ["d3", "d2", "d4", "d1"]  # d1 and d4 tie at 1/62: by document id, descending
    # AP by hand: q1 d1 first: 1; q2 d3 and d2 first: 1; q3 d1 (1/62 + 1/61), then d4 (1/61 + 1/63): 1/2
    table = pd.read_csv(path / "perquery.csv", dtype={"query_id": str})
    ap = table[table["measure"] == "AP"].set_index("query_id")["value"].to_dict()
    assert ap == pytest.approx({"q1": 1.0, "q2": 1.0, "q3": 0.5})
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    sha = {name: (stored / "xx-en" / name / "manifest.sha256").read_text().strip() for name in ("lexical", "dense")}
    assert manifest["fusion"]["method"] == "rrf" and manifest["fusion"]["k"] == 60
    assert [(i["run"], i["weight"], i["manifest_sha256"], i["external"]) for i in manifest["fusion"]["inputs"]] == [
        ("lexical", 1.0, sha["lexical"], True), ("dense", 1.0, sha["dense"], True)]
    assert manifest["spec"] == {"system": "rrf-lexical-dense", "fusion": {"method": "rrf", "k": 60, "inputs": [
        {"run": "lexical", "weight": 1.0, "manifest_sha256": sha["lexical"]},
        {"run": "dense", "weight": 1.0, "manifest_sha256": sha["dense"]}]}}
    assert manifest["measures"] == pytest.approx({"AP": 2.5 / 3, "RR@10": 2.5 / 3})
    assert manifest["description"] == "reciprocal rank fusion of lexical, dense" and manifest["pair"] == "xx-en"
    assert load_run(path).system == "rrf-lexical-dense"
    assert "rrf-lexical-dense" in out and "0.8333" in out
    assert "| rrf-lexical-dense |" in (reports / "xx-en.md").read_text()


def test_bench_fuse_combsum_is_the_hybrids_combsum(monkeypatch, capsys, tmp_path, stored):
    """mdense-hybrid, run on components whose runs are ``dense`` and ``lexical``, scores what `bench fuse --method
    combsum` with the hybrid's weights stores."""
    from bench.systems import RunContext, get_system
    from bench.systems.stages.settings import HYBRID_PSQ_WEIGHT

    pair = load_pair_file(TINY / "pair.yaml")
    ctx = RunContext(pair, pair.collection())
    ctx.remember("mdense-maxsim", DENSE)  # the hybrid's components, as if this invocation had run them
    ctx.remember("bm25-psq", LEXICAL)
    hybrid = get_system("mdense-hybrid").run(ctx)
    assert ctx.artifacts["fusion"]["weights"] == {"mdense-maxsim": 0.6, "bm25-psq": 0.4}
    # q1 by hand: lexical d2 1, d1 2/3, d3 0; dense d1 1, d4 0: d1 .6 + .4·2/3 = .8667, d2 .4, d3 0, d4 0
    assert hybrid["q1"] == pytest.approx({"d1": 0.6 + 0.4 * 2 / 3, "d2": 0.4, "d3": 0.0, "d4": 0.0})
    weights = f"{1 - HYBRID_PSQ_WEIGHT!r},{HYBRID_PSQ_WEIGHT!r}"
    code, _, err = _fuse(monkeypatch, capsys, stored, "--inputs", "dense,lexical", "--method", "combsum",
                         "--weights", weights, "--name", "hybrid", "--no-report")
    assert code == 0, err
    assert (stored / "xx-en" / "hybrid" / "run.trec").read_text() == format_trec(hybrid, "hybrid")
    assert json.loads((stored / "xx-en" / "hybrid" / MANIFEST_FILE).read_text())["fusion"]["k"] is None


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("args, message", [
    (["--inputs", "lexical,zz", "--method", "rrf"],
     "error: no stored run 'zz' of xx-en under {runs} (stored runs: dense, lexical)"),
    (["--inputs", "lexical,other", "--method", "rrf"],
     "error: input run 'other' is a run of yy-en, not of xx-en (fuse runs of one pair)"),
    (["--inputs", "lexical,dense", "--method", "combsum", "--weights", "0.5"],
     "error: 1 weight(s) for 2 run(s) (give one weight per run, in the runs' order)"),
    (["--inputs", "lexical,dense", "--method", "combsum", "--weights", "0.5,-1"],
     "error: weight -1 is negative (weights are 0 or more)"),
    (["--inputs", "lexical,dense", "--method", "rrf", "--weights", "0.5,lots"],
     "error: weight 'lots' is not a number (give a number such as 0.5)"),
    (["--inputs", "lexical,dense", "--method", "rrf", "--rrf-k", "0"],
     "error: the RRF constant k must be a positive number, not 0 (e.g. 60, the default)"),
    (["--inputs", "lexical,dense", "--method", "combsum", "--rrf-k", "10"],
     "error: the RRF constant k (--rrf-k, rrf_k=) is for method rrf, not combsum (drop it, or fuse with rrf)"),
    (["--inputs", "lexical,dense", "--method", "rrf", "--name", "dense"],
     "error: a run 'dense' of xx-en exists already ({runs}/xx-en/dense) "
     "(give the fused run another name, or delete that run first)"),
    (["--inputs", "lexical,dense", "--method", "rrf", "--name", "bm25"],
     "error: run name 'bm25' is a built-in system (choose another name, e.g. bm25-external)"),
    (["--inputs", "lexical,lexical", "--method", "rrf"],
     "error: input run 'lexical' is named twice (name each input run once)"),
    (["--inputs", "lexical", "--method", "rrf"],
     "error: fusion needs at least two input runs, got 1 (e.g. inputs bm25,mdense)"),
])
def test_bad_fusions_are_one_line_and_write_nothing(monkeypatch, capsys, tmp_path, stored, args, message):
    table = pd.DataFrame({"query_id": ["q1"], "measure": ["AP"], "value": [1.0]})
    write_run(stored, "xx-en", "other", {"q1": {"d1": 1.0}}, table, {"pair": "yy-en", "system": "other"}, None)
    before = _tree(tmp_path)
    code, out, err = _fuse(monkeypatch, capsys, stored, *args, "--reports", str(tmp_path / "reports"))
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [message.format(runs=stored)]
    assert _tree(tmp_path) == before and not (tmp_path / "reports").exists()


def test_the_api_fuses_like_the_command(tmp_path, stored):
    import bench

    results = bench.fuse(TINY / "pair.yaml", ["lexical", "dense"], "rrf", runs=stored, rrf_k=1, weights=[1, 3],
                         reports=tmp_path / "reports")
    assert results.systems == ["rrf-lexical-dense"] and tmp_path / "reports" / "xx-en.md" in results.reports
    assert "| rrf-lexical-dense |" in (tmp_path / "reports" / "xx-en.md").read_text()
    # q3: lexical d4 1, d1 2; dense d1 1, d2 2, d4 3: d1 1/3 + 3/2, d4 1/2 + 3/4, d2 3/3: AP 1/2
    top = results.top("rrf-lexical-dense", "q3")
    assert list(zip(top["doc_id"], top["score"], top["relevance"])) == [
        ("d1", pytest.approx(1 / 3 + 1.5), 0), ("d4", pytest.approx(1.25), 1), ("d2", pytest.approx(1.0), 0)]
    assert results.table().loc["rrf-lexical-dense", ("AP", "mean")] == pytest.approx((1 + 1 + 0.5) / 3)
    with pytest.raises(BenchError, match="a run 'rrf-lexical-dense' of xx-en exists already"):
        bench.fuse(TINY / "pair.yaml", "lexical,dense", "rrf", runs=stored)
