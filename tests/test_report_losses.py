"""Where the largest losses went wrong (issue 26, 9b): for the queries the best system lost most on, the documents it
ranked above the first relevant one, read from the stored run.trec, the pair's qrels and its documents."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from bench.results import report
from bench.results.report.losses import snippet

TINY = Path(__file__).parent / "data" / "tiny-pair"
WORDS = " ".join(f"w{i:03d}" for i in range(60))  # 299 characters: cut after w039 (199 characters)


def floor(ctx):  # the baseline: a relevant document first for every query (AP 1)
    return {"q1": {"d1": 1.0}, "q2": {"d2": 2.0, "d3": 1.0}, "q3": {"d4": 1.0}}


def mine(ctx):
    # q1 as the baseline; q2: d5 and d4 above d2 (rank 3), d3 at 4 -> AP (1/3 + 2/4) / 2; q3: no relevant document
    return {"q1": {"d1": 1.0}, "q2": {"d5": 4.0, "d4": 3.0, "d2": 2.0, "d3": 1.0},
            "q3": {"d1": 3.0, "d5": 2.0, "d2": 1.0}}


@pytest.fixture
def tiny(tmp_path, bench_home):
    """The tiny pair with a long document d5 and d4 judged not relevant for q2, and runs of a baseline (bm25) and
    of a system (mine) that loses on q2 and q3, written by the runner (so their manifests record the pair's data)."""
    from bench.data.collection.local import load_pair_file
    from bench.experiment.runner import run_systems
    from bench.systems import System

    folder = tmp_path / "pair"
    shutil.copytree(TINY, folder)
    with (folder / "docs.jsonl").open("a") as docs:
        docs.write(json.dumps({"doc_id": "d5", "title": "Long | one", "text": WORDS}) + "\n")
    with (folder / "qrels.txt").open("a") as qrels:
        qrels.write("q2 0 d4 0\n")
    pair = load_pair_file(folder / "pair.yaml")
    run_systems(pair, [System("bm25", "floor", floor, {}), System("mine", "mine", mine, {})], tmp_path / "runs")
    return pair, folder / "pair.yaml", tmp_path / "runs"


def section(md: str) -> list[str]:
    """The lines of the losses' section, up to the next section of the report."""
    lines = md.splitlines()
    start = lines.index("### Where the largest losses went wrong")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("The sorted chart"))
    return lines[start:end]


EXPECTED = [
    "### Where the largest losses went wrong",
    "",
    "The queries on which mine lost most against bm25 (MAP), largest loss first: the first relevant document in "
    "mine's ranking (in bold) beside the documents it ranked above it (up to 3, from its top; its top 3 where it "
    "retrieved no relevant document). Ranks are those of the stored runs mine and bm25; a passage is the start of "
    "the document's text (up to 200 characters, cut at a word); judgment: as in the pair's qrels (unjudged: not in "
    "them).",
    "",
    "#### q3 (Δ -1.000)",
    "",
    "Query: Nyumba-KUBWA! (big house). mine retrieved no relevant document (1 judged relevant); bm25 ranks d4 at 1. "
    "Its top 3:",
    "",
    "| mine rank | document | judgment | title | passage | bm25 rank |",
    "| --- | --- | --- | --- | --- | --- |",
    "| 1 | d1 | unjudged | Cats | The cat sat on the mat. Paka mkeka. | — |",
    "| 2 | d5 | unjudged | Long \\| one | " + WORDS[:199] + "… | — |",
    "| 3 | d2 | unjudged | — | Dogs bark loudly at night. | — |",
    "| — | **d4** | relevant (1) | — | nyumba kubwa: a big house | 1 |",
    "",
    "#### q2 (Δ -0.583)",
    "",
    "Query: mbwa (dog). mine ranks its first relevant document, d2, at 3 (of 2 judged relevant), below 2 others.",
    "",
    "| mine rank | document | judgment | title | passage | bm25 rank |",
    "| --- | --- | --- | --- | --- | --- |",
    "| 1 | d5 | unjudged | Long \\| one | " + WORDS[:199] + "… | — |",
    "| 2 | d4 | not relevant | — | nyumba kubwa: a big house | — |",
    "| 3 | **d2** | relevant (1) | — | Dogs bark loudly at night. | 1 |",
    "",
]


def test_bench_report_shows_the_documents_above_the_first_relevant_one(tiny, tmp_path, monkeypatch, capsys):
    from cli_run import run_main

    _, pair_file, runs = tiny
    code, out, err = run_main(monkeypatch, capsys, "report", "--runs", str(runs), "--reports", str(tmp_path / "r"),
                              "--pair-file", str(pair_file))
    assert code == 0, err
    md = (tmp_path / "r" / "xx-en.md").read_text()
    assert "| q3 | Nyumba-KUBWA! | big house | 1.000 | 0.000 | -1.000 |" in md  # AP by hand, as in the analysis
    assert "| q2 | mbwa | dog | 1.000 | 0.417 | -0.583 |" in md
    assert section(md) == EXPECTED
    html = (tmp_path / "r" / "xx-en.html").read_text()
    assert "<h3>Where the largest losses went wrong</h3>" in html and "<h4>q2 (Δ -0.583)</h4>" in html
    assert '<td class="text"><span class="best">d4</span></td><td class="text">relevant (1)</td>' in html
    assert "<td class=\"text\">Long | one</td>" in html and WORDS[:199] + "…" in html


def test_bench_run_writes_them_and_partial_reports_do_not(tiny, tmp_path):
    from bench.experiment.plan import RunPlan

    pair, _, runs = tiny
    plan = RunPlan(pair, pair.name, (), runs=runs, reports=tmp_path / "r")
    plan.write_report(partial=True)
    assert "### Where the largest losses" not in (tmp_path / "r" / "xx-en.md").read_text()
    plan.write_report()
    assert section((tmp_path / "r" / "xx-en.md").read_text()) == EXPECTED


def test_without_a_loader_or_a_loadable_pair_the_section_is_absent(tiny, tmp_path, monkeypatch, capsys, caplog):
    from cli_run import run_main

    pair, pair_file, runs = tiny
    report.write_pair_report("xx-en", runs, tmp_path / "lib")  # a library caller passes no loader
    md = (tmp_path / "lib" / "xx-en.md").read_text()
    assert "| q2 | mbwa | dog | 1.000 | 0.417 | -0.583 |" in md and "Where the largest losses" not in md
    # bench report without the pair file: xx-en is not a built-in pair, so its documents are not known
    code, _, err = run_main(monkeypatch, capsys, "report", "--runs", str(runs), "--reports", str(tmp_path / "cli"))
    assert code == 0, err
    assert "Where the largest losses" not in (tmp_path / "cli" / "xx-en.md").read_text()
    assert [r.getMessage() for r in caplog.records if r.name == "bench.experiment.documents"] == [
        "the report of xx-en does not show the documents of its largest losses: xx-en is not a built-in pair (give "
        "its pair file: --pair-file PATH)"]
    caplog.clear()
    # the pair's judgments changed since the runs were scored: a warning, no section, the report written
    with (pair_file.parent / "qrels.txt").open("a") as qrels:
        qrels.write("q1 0 d2 1\n")
    code, _, err = run_main(monkeypatch, capsys, "report", "--runs", str(runs), "--reports", str(tmp_path / "new"),
                            "--pair-file", str(pair_file))
    assert code == 0, err
    assert "Where the largest losses" not in (tmp_path / "new" / "xx-en.md").read_text()
    warned = [r.getMessage() for r in caplog.records if r.name == "bench.experiment.documents"]
    assert len(warned) == 1 and warned[0].startswith(
        f"the report of xx-en does not show the documents of its largest losses: run {runs / 'xx-en'}/")
    assert f"was scored on {pair.dataset_id}, not on bench-local/xx-en@" in warned[0]


def test_a_hand_made_loader_and_the_other_cases(tmp_path):
    """Ranks from run.trec in the one order (equal scores: doc id descending); a relevant document first; a
    query without a judged relevant document; the loader asked once, for the best system's and the baseline's
    runs, and for the texts of the documents shown only."""
    from test_report import make_run

    root = tmp_path / "runs"
    ids = ["q1", "q2", "q3"]
    make_run(root, "sw-en", "bm25", {"AP": [1.0, 1.0, 0.5]}, query_ids=ids,
             run={"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q3": {"x": 1.0}})
    # q1: a relevant document first; q2: e and b tied, e first (doc id descending); q3: none judged relevant
    make_run(root, "sw-en", "optical", {"AP": [0.75, 0.5, 0.25]}, query_ids=ids,
             run={"q1": {"a": 3.0, "c": 2.0, "d": 1.0}, "q2": {"b": 1.0, "e": 1.0}, "q3": {"x": 1.0}})
    qrels = {"q1": {"a": 1, "d": 2}, "q2": {"b": 1}, "q3": {"x": 0}}
    asked, read = [], []

    class Documents:
        def __init__(self):
            self.qrels = qrels

        def texts(self, doc_ids):
            read.append(sorted(doc_ids))
            return {d: (d.upper(), f"text of {d}") for d in doc_ids}

    def load(pair, runs):
        asked.append((pair, [r.name for r in runs]))
        return Documents()

    built = report.build_pair_report("sw-en", root, documents=load, n_resamples=100)
    assert asked == [("sw-en", ["optical", "bm25"])] and read == [["a", "b", "e", "x"]]
    assert [(c.query_id, c.delta) for c in built.passages.cases] == [("q2", -0.5), ("q3", -0.25), ("q1", -0.25)]
    page = report.pair_page(built, tmp_path)
    views = {v.heading: v for v in page.differences.passages}
    assert views["q1 (Δ -0.250)"].text == ("optical ranks a relevant document first (of 2 judged relevant): it lost "
                                           "on the others (ranked lower or not retrieved).")
    assert [[c.text for c in row] for row in views["q1 (Δ -0.250)"].table.rows] == [
        ["1", "a", "relevant (1)", "A", "text of a", "1"]]
    assert views["q2 (Δ -0.500)"].text == ("optical ranks its first relevant document, b, at 2 (of 1 judged "
                                           "relevant), below 1 other.")
    assert [[c.text for c in row] for row in views["q2 (Δ -0.500)"].table.rows] == [
        ["1", "e", "unjudged", "E", "text of e", "—"], ["2", "b", "relevant (1)", "B", "text of b", "1"]]
    assert views["q3 (Δ -0.250)"].text == "No document of this query is judged relevant."
    assert [[c.text for c in row] for row in views["q3 (Δ -0.250)"].table.rows] == [
        ["1", "x", "not relevant", "X", "text of x", "1"]]
    # a loader with nothing for the runs: no section
    assert report.build_pair_report("sw-en", root, documents=lambda pair, runs: None, n_resamples=100).passages is None


def test_below_the_top_three_only_the_top_three_are_shown(tmp_path):
    from test_report import make_run

    root = tmp_path / "runs"
    make_run(root, "sw-en", "bm25", {"AP": [1.0, 0.5]}, query_ids=["q1", "q2"], run={"q1": {"r": 1.0}, "q2": {}})
    make_run(root, "sw-en", "optical", {"AP": [0.2, 0.5]}, query_ids=["q1", "q2"],  # q2 tied: not shown
             run={"q1": {"n1": 5.0, "n2": 4.0, "n3": 3.0, "n4": 2.0, "r": 1.0}, "q2": {}})

    class Documents:
        qrels = {"q1": {"r": 1}}

        def texts(self, doc_ids):
            return {}  # not in the collection: shown without title or passage

    built = report.build_pair_report("sw-en", root, documents=lambda pair, runs: Documents(), n_resamples=100)
    [view] = report.pair_page(built, tmp_path).differences.passages
    assert view.text == ("optical ranks its first relevant document, r, at 5 (of 1 judged relevant), below 4 others; "
                         "the top 3 of them are shown.")
    assert [[c.text for c in row] for row in view.table.rows] == [
        ["1", "n1", "unjudged", "—", "—", "—"], ["2", "n2", "unjudged", "—", "—", "—"],
        ["3", "n3", "unjudged", "—", "—", "—"], ["5", "r", "relevant (1)", "—", "—", "1"]]


def test_snippet_is_cut_at_a_word():
    assert snippet("  a  short\ntext ") == "a short text"
    assert snippet("one two three", limit=8) == "one two…"
    assert snippet("one two, three", limit=9) == "one two…"  # the punctuation before the cut is dropped
    assert snippet("one two three", limit=7) == "one two…"  # the limit falls at the end of a word: kept whole
    assert snippet("one two", limit=7) == "one two"  # exactly the limit: not cut
    assert snippet("abcdefghij klm", limit=4) == "abcd…"  # a first word longer than the limit
    assert snippet(WORDS) == WORDS[:199] + "…" and len(WORDS[:199]) == 199


def test_documents_loader_reads_each_document_once(tiny, caplog):
    from bench.experiment.documents import documents_loader
    from bench.results.runs import load_runs

    pair, _, runs = tiny
    stored = load_runs(runs, "xx-en")
    load = documents_loader(pair)
    documents = load("xx-en", stored)
    assert documents.qrels["q2"] == {"d2": 1, "d3": 1, "d4": 0}
    assert documents.texts(["d5", "d1", "nope"]) == {"d5": ("Long | one", WORDS), "d1": ("Cats", "The cat sat on the "
                                                                                                "mat. Paka mkeka.")}
    assert load("xx-en", stored) is documents  # the same, its texts kept
    with caplog.at_level(logging.WARNING):
        assert documents_loader()("yy-en", stored) is None
    assert "yy-en is not a built-in pair" in caplog.text
