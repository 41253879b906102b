"""CIRAL and AfriCLIRMatrix: topics and qrels from the mirror through ir_datasets, passages in the upstream
format (generated here), the offline error, pyserini's published baselines as expected scores."""

from __future__ import annotations

import hashlib
import json
import math
import tarfile
import urllib.error
from dataclasses import replace
from pathlib import Path

import ir_datasets
import pytest

from bench.experiment import external

from bench.results import regress
from bench.data.collection import Collection, africlirmatrix, ciral, remote
from bench.errors import BenchError
from bench.data.pairs import get_pair
from bench.infra.store import COMPLETE_MARKER
from cli_run import run_main

ROOT = Path(__file__).resolve().parents[1]
# passages as Anserini's MrTyDiCollection stores them raw (pretty-printed JSON objects), three of them
# judged relevant for topic 11 of sw test-b, one judged not relevant
PASSAGES = [
    {"docid": "AMANI#2592#0", "title": "Kipchoge", "text": "Eliud Kipchoge alizaliwa Kenya.", "url": "https://a"},
    {"docid": "VOA#2959#0", "title": "Mbio", "text": "Mkimbiaji wa mbio ndefu kutoka Kenya."},
    {"docid": "TUKO#19418#0", "title": "", "text": "Habari za michezo."},
    {"docid": "MTANZANIA#3158#1", "title": "Riadha", "text": "Kipchoge ashinda tena."},
    {"docid": "TAIFALEO#1#0", "title": "Rais", "text": "Rais wa Kenya."},
    {"docid": "VOA#1#1", "title": "Afya", "text": "Magonjwa ya ubongo."},
]


def offline(monkeypatch):
    def refuse(url, timeout=None):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(remote.urllib.request, "urlopen", refuse)


def test_the_pairs_are_named_by_query_and_document_language():
    for lang in ("sw", "ha", "yo"):
        pair = get_pair(f"en-{lang}-ciral")
        assert (pair.query_lang, pair.doc_lang, pair.dataset_id) == ("en", lang, f"ciral/en-{lang}/test-b")
        assert pair.measures == ("nDCG@20", "R@100") and pair.low_resource and not pair.tuning
        assert get_pair(f"en-{lang}-ciral-test-a").dataset_id == f"ciral/en-{lang}/test-a"
        other = get_pair(f"en-{lang}-africlirmatrix")
        assert (other.query_lang, other.doc_lang, other.dataset_id) == ("en", lang, f"africlirmatrix/en-{lang}/test")
    assert get_pair("en-sw-ciral").expected_docs == ciral.INDEXES["sw"].documents == 949013


@pytest.mark.integration
@pytest.mark.usefixtures("real_data")  # topics and qrels: the mirror's
def test_topics_and_qrels_through_ir_datasets(bench_home):
    import bench  # noqa: F401  (registers bench's datasets)

    dataset = ir_datasets.load("ciral/en-sw/test-b")
    queries = {q.query_id: q for q in dataset.queries_iter()}
    assert len(queries) == 112  # 113 English topics; 238 has no native version (the native file has 237 twice)
    assert queries["11"].text == "In which country was Eliud Kipchoge, a long-distance runner, born?"
    assert queries["11"].translation == "Eliud Kipchoge, mkimbiaji wa mbio ndefu wa Kenya, alizaliwa nchi gani?"
    assert queries["15"].translation == "Rais wa sasa wa Jamhuri ya Kenya ni nani?"  # stripped
    assert "238" not in queries and queries["237"].translation.startswith("Ni virusi gani hatari")
    qrels = {(q.query_id, q.doc_id): q.relevance for q in dataset.qrels_iter()}
    assert qrels[("11", "AMANI#2592#0")] == 1 and qrels[("11", "TUKO#19418#0")] == 0
    assert not any(qid == "23" for qid, _ in qrels)  # judged, but no topic: dropped
    collection = Collection("ciral/en-sw/test-b")
    assert collection.notes == {"english_topics": 113, "native_repeated_ids": 1, "without_native": 1,
                                "without_qrels": 0, "repeated_english_ids": 0, "qrels_without_topic": 1}
    assert collection.sources["topics/topics.ciral-v1.0-sw-test-b.tsv"] == ciral.SHA256[
        "topics/topics.ciral-v1.0-sw-test-b.tsv"]
    assert collection.sources[ciral.INDEXES["sw"].url] == "md5:1236a1a4c87268d98ec6534cd99aaada"
    assert [len(Collection(f"ciral/en-{lang}/test-b").queries) for lang in ("ha", "yo")] == [312, 554]
    matrix = ir_datasets.load("africlirmatrix/en-sw/test")
    first = next(iter(matrix.queries_iter()))
    assert (first.query_id, first.text, first.translation) == ("18559733", "From the Cradle to the Grave (album)", None)
    assert sum(1 for _ in matrix.queries_iter()) == 1500


def test_passage_records_in_the_upstream_format():
    records = [json.dumps(p, indent=2) for p in PASSAGES] + [json.dumps({**PASSAGES[0], "text": "again"})]
    docs = list(ciral.passage_records(records))
    assert [d.doc_id for d in docs] == [p["docid"] for p in PASSAGES]  # the repeated docid keeps its first text
    assert docs[0].title == "Kipchoge" and docs[0].default_text() == "Kipchoge Eliud Kipchoge alizaliwa Kenya."
    assert docs[2].default_text() == "Habari za michezo."
    with pytest.raises(BenchError, match="record 2 is not JSON"):
        list(ciral.passage_records([records[0], "{not json"]))
    with pytest.raises(BenchError, match="record 1 has no docid and text"):
        list(ciral.passage_records([json.dumps({"id": "x", "contents": "y"})]))


@pytest.mark.integration
@pytest.mark.usefixtures("real_data")  # topics and qrels: the mirror's
def test_offline_the_missing_passages_are_one_line_and_the_queries_still_load(monkeypatch, capsys, tmp_path,
                                                                                bench_home):
    offline(monkeypatch)
    collection = Collection("ciral/en-sw/test-b")
    assert len(collection.queries) == 112  # topics and qrels come from the mirror
    with pytest.raises(BenchError, match=r"the CIRAL Swahili passages\) is not here .*bench fetch --pair en-sw-ciral"):
        collection.docs_count
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair", "en-sw-ciral", "--systems", "bm25",
                            "--runs", str(tmp_path / "runs"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: pyserini's prebuilt index ciral-v1.0-sw (the CIRAL Swahili passages) is not here "
                          "and cannot be downloaded from https://rgw.cs.uwaterloo.ca/pyserini/indexes/"
                          "lucene-index.ciral-v1.0-sw.20230721.e850ea.tar.gz: [Errno -2] Name or service not known")
    assert "bench fetch --pair en-sw-ciral" in err
    assert not (tmp_path / "runs").exists() and not any((bench_home / "corpora").glob("*/passages.jsonl"))
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair", "en-sw-africlirmatrix", "--systems", "bm25",
                            "--runs", str(tmp_path / "runs"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "the AfriCLIRMatrix Swahili documents" in err
    # an external run needs only the topics and qrels: scored offline, its document ids not checked
    run = tmp_path / "mine.trec"
    run.write_text("11 Q0 AMANI#2592#0 1 2.0 t\n")
    code, out, err = run_main(monkeypatch, capsys, "eval", "--pair", "en-sw-ciral", "--run", f"mine={run}",
                              "--runs", str(tmp_path / "runs"), "--no-report")
    assert code == 0, err
    manifest = json.loads((tmp_path / "runs" / "en-sw-ciral" / "mine" / "manifest.json").read_text())
    assert manifest["n_unknown_docs"] is None and manifest["n_docs"] is None
    assert manifest["measures"]["nDCG@20"] == pytest.approx(1 / sum(1 / math.log2(i + 1) for i in range(1, 8)) / 112)


def _tiny_ciral_index(tmp_path: Path) -> Path:
    """A Lucene index of PASSAGES built as pyserini built CIRAL's (MrTyDiCollection, -storeRaw), packed
    like the published archive."""
    from bench.methods.retrieve.lucene import ensure_jvm

    ensure_jvm()  # before jnius is imported: that import starts a JVM without pyserini's classpath
    from jnius import autoclass
    docs = tmp_path / "collection"
    docs.mkdir()
    (docs / "passages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PASSAGES))
    index = tmp_path / "lucene-index.ciral-v1.0-sw.20230721.e850ea"
    autoclass("io.anserini.index.IndexCollection").main([
        "-collection", "MrTyDiCollection", "-input", str(docs), "-index", str(index), "-generator",
        "DefaultLuceneDocumentGenerator", "-threads", "1", "-storeRaw", "-quiet"])
    archive = tmp_path / "lucene-index.ciral-v1.0-sw.20230721.e850ea.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(index, arcname=index.name)
    return archive


@pytest.mark.integration
@pytest.mark.usefixtures("real_data")  # topics and qrels: the mirror's
def test_passages_from_a_prebuilt_index_then_an_external_run_on_them(monkeypatch, capsys, tmp_path, bench_home):
    from bench.methods.retrieve import prebuilt

    archive = _tiny_ciral_index(tmp_path)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    fake = replace(ciral.INDEXES["sw"], url=archive.as_uri(), digest=f"md5:{md5}", documents=len(PASSAGES))
    monkeypatch.setitem(ciral.INDEXES, "sw", replace(fake, digest="md5:" + "0" * 32))
    with pytest.raises(BenchError, match="md5 mismatch"):  # a wrong copy never lands
        prebuilt.fetch_corpus("ciral/en-sw/test-b")
    assert not ciral.passages_ready("ciral/en-sw/test-b")
    monkeypatch.setitem(ciral.INDEXES, "sw", fake)
    lines = prebuilt.fetch_corpus("ciral/en-sw/test-b")
    assert len(lines) == 1 and "the CIRAL Swahili passages" in lines[0]
    assert prebuilt.fetch_corpus("ciral/en-sw/test-b") == []  # once
    stored = ciral.passages_path("sw")
    assert (stored.parent / COMPLETE_MARKER).exists() and not list(stored.parent.glob("*.tar.gz"))
    assert [json.loads(line)["docid"] for line in stored.read_text().splitlines()] == [p["docid"] for p in PASSAGES]
    assert json.loads(stored.read_text().splitlines()[0])["url"] == "https://a"  # stored raw: every field kept

    collection = Collection("ciral/en-sw/test-b")
    assert collection.docs_count == 6 and next(collection.iter_docs()).title == "Kipchoge"
    run = tmp_path / "mine.trec"
    run.write_text("11 Q0 TUKO#19418#0 1 3.0 t\n11 Q0 AMANI#2592#0 2 2.0 t\n11 Q0 VOA#2959#0 3 1.0 t\n"
                   "15 Q0 NOT#A#DOC 1 1.0 t\n")
    results = external.add_runs(get_pair("en-sw-ciral"), [f"mine={run}"], tmp_path / "runs")
    # topic 11 has 7 relevant passages: relevant at ranks 2 and 3 of 20
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    ndcg_11 = dcg / sum(1 / math.log2(i + 1) for i in range(1, 8))
    assert ndcg_11 == pytest.approx(0.31087, abs=1e-5)
    assert results[0].means == pytest.approx({"nDCG@20": ndcg_11 / 112, "R@100": (2 / 7) / 112})
    manifest = json.loads((tmp_path / "runs" / "en-sw-ciral" / "mine" / "manifest.json").read_text())
    assert manifest["n_unknown_docs"] == 1 and manifest["n_docs"] == 6
    assert manifest["pair_info"]["measures"] == ["nDCG@20", "R@100"]


@pytest.mark.integration
@pytest.mark.usefixtures("real_data")  # topics and qrels: the mirror's
def test_africlirmatrix_documents_download_once_with_their_sha256_recorded(monkeypatch, tmp_path, bench_home):
    lines = [json.dumps({"id": "104757", "title": "Nairobi", "text": "Nairobi ni mji mkuu wa Kenya."}),
             json.dumps({"docid": "71624", "contents": "Mombasa"})]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(africlirmatrix, "corpus_remote", lambda lang: remote.UrlFile(
        "the AfriCLIRMatrix Swahili documents", corpus.as_uri(), None))
    docs = Collection("africlirmatrix/en-sw/test")
    assert [(d.doc_id, d.title) for d in docs.iter_docs()] == [("104757", "Nairobi"), ("71624", "")]
    assert docs.sources[corpus.as_uri()] == hashlib.sha256(corpus.read_bytes()).hexdigest()
    with pytest.raises(BenchError, match=r"corpus.jsonl:1: expected an object with an id and a text"):
        list(africlirmatrix.corpus_records(['{"title": "no id"}'], "corpus.jsonl"))


def test_published_ciral_baselines_are_expected_scores(tmp_path):
    import pandas as pd

    from bench.results.runs import write_run

    path = ROOT / "reports" / "expected-ciral.yaml"
    rows = {(p, s, m): v for p, s, m, v, _ in regress.rows(regress.load_expected(path))}
    assert rows == {
        ("en-ha-ciral", "oracle-bm25", "nDCG@20"): 0.2121, ("en-ha-ciral", "oracle-bm25", "R@100"): 0.38,
        ("en-sw-ciral", "oracle-bm25", "nDCG@20"): 0.1727, ("en-sw-ciral", "oracle-bm25", "R@100"): 0.4166,
        ("en-yo-ciral", "oracle-bm25", "nDCG@20"): 0.3459, ("en-yo-ciral", "oracle-bm25", "R@100"): 0.6434,
    }
    runs = tmp_path / "runs"
    verdicts = regress.check(path, runs)  # offline, nothing ran: all SKIP, and that is not a pass
    assert {v.status for v in verdicts} == {regress.SKIP} and regress.exit_code(verdicts) == 1
    table = pd.DataFrame([("11", "nDCG@20", 0.18), ("11", "R@100", 0.40)], columns=["query_id", "measure", "value"])
    write_run(runs, "en-sw-ciral", "oracle-bm25", {"11": {"d": 1.0}}, table,
              {"pair": "en-sw-ciral", "system": "oracle-bm25"}, 10)
    verdicts = regress.check(path, runs)
    assert [(v.pair, v.measure, v.status) for v in verdicts if v.status != regress.SKIP] == [
        ("en-sw-ciral", "nDCG@20", regress.OKISH), ("en-sw-ciral", "R@100", regress.OKISH)]  # within 0.03
    assert regress.exit_code(verdicts) == 0
