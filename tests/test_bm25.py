"""BM25 through Lucene on a tiny hand-made pair (unit) and on AfriQA sw-en (integration)."""

from pathlib import Path

import pytest

from bench.data.collection.local import load_pair_file
from bench.results.scoring import means, per_query
from bench.methods.retrieve import bm25
from bench.infra.text import tokenize

TINY = Path(__file__).parent / "data" / "tiny-pair"


def test_tokenize_folds_case_and_splits_on_punctuation_keeping_diacritics():
    assert tokenize("Nyumba-KUBWA! ọmọ́ Ẹ̀kọ́, 2023") == ["nyumba", "kubwa", "ọmọ́", "ẹ̀kọ́", "2023"]


@pytest.mark.parametrize("pair_file", ["pair.yaml", "pair-foreign-docs.yaml"])
def test_top_documents_on_a_tiny_collection(bench_home, pair_file):
    pair = load_pair_file(TINY / pair_file)
    collection = pair.collection()
    index = bm25.build_index(collection, pair.doc_lang)
    run = bm25.search(index, [(q.query_id, q.text) for q in collection.queries], pair.doc_lang, depth=10)
    top = {qid: max(docs, key=docs.get) for qid, docs in run.items()}
    assert top == {"q1": "d1", "q2": "d3", "q3": "d4"}
    assert set(run["q1"]) == {"d1"}  # no other document has paka or mkeka
    again = bm25.build_index(collection, pair.doc_lang)
    assert again.path == index.path  # cached by fingerprint


@pytest.mark.parametrize("pair_file", ["pair.yaml", "pair-foreign-docs.yaml"])
def test_the_index_scores_as_anserinis_index_collection_over_the_same_records(bench_home, tmp_path, pair_file):
    """bench feeds Lucene in batches (for its progress bar); Anserini's IndexCollection over a file of the
    same JsonCollection records must give the same scores."""
    import json

    pair = load_pair_file(TINY / pair_file)
    collection = pair.collection()
    ours = bm25.build_index(collection, pair.doc_lang)
    from jnius import autoclass  # the JVM is up (build_index started it)

    (tmp_path / "in").mkdir()
    with open(tmp_path / "in" / "docs.jsonl", "w") as out:
        for doc in collection.iter_docs():
            text = doc.default_text() if pair.doc_lang == "en" else " ".join(tokenize(doc.default_text()))
            out.write(json.dumps({"id": doc.doc_id, "contents": text}) + "\n")
    autoclass("io.anserini.index.IndexCollection").main([
        "-collection", "JsonCollection", "-input", str(tmp_path / "in"), "-index", str(tmp_path / "ref"),
        "-generator", "DefaultLuceneDocumentGenerator", "-threads", "1", "-storePositions", "-storeDocvectors",
        "-storeRaw", "-quiet", *(["-pretokenized"] if pair.doc_lang != "en" else [])])
    reference = bm25.Bm25Index(tmp_path / "ref", pair.doc_lang)
    queries = [(q.query_id, q.text) for q in collection.queries] + [("all", "cat dogs mbwa big house mat")]
    a, b = (bm25.search(i, queries, pair.doc_lang) for i in (ours, reference))
    assert a.keys() == b.keys() and all(a[q] == pytest.approx(b[q]) for q in a) and len(a["all"]) >= 3


def test_weighted_query_with_unit_weights_equals_the_plain_query(bench_home):
    pair = load_pair_file(TINY / "pair.yaml")
    index = bm25.build_index(pair.collection(), "en")
    plain = bm25.search(index, [("q", "cat dogs")], "en")
    weighted = bm25.search_weighted(index, {"q": {"cat": 1.0, "dogs": 1.0}})
    assert weighted["q"] == pytest.approx(plain["q"])
    boosted = bm25.search_weighted(index, {"q": {"cat": 1.0, "dogs": 5.0}})
    # a boost multiplies the term's BM25 contribution: d2 matches only "dog", d1 only "cat"
    assert boosted["q"]["d2"] == pytest.approx(5 * plain["q"]["d2"], rel=1e-3)  # Lucene scores are float32
    assert boosted["q"]["d1"] == pytest.approx(plain["q"]["d1"], rel=1e-3)
    assert bm25.search_weighted(index, {"q": {"the": 1.0}}) == {"q": {}}  # a stop word leaves no clause


def test_a_query_of_more_terms_than_lucenes_clause_limit_is_searched(bench_home, monkeypatch, caplog):
    """Issue 25: Lucene's default limit is 1,024 clauses; a longer query (1,500 words no document has, and
    "cat") scores as "cat" alone, plain and weighted; past bench's own limit the query is cut, with a warning."""
    pair = load_pair_file(TINY / "pair.yaml")
    index = bm25.build_index(pair.collection(), "en")
    words = [f"w{i}" for i in range(1500)]
    cat = bm25.search(index, [("q", "cat")], "en")
    assert bm25.search(index, [("q", " ".join([*words, "cat"]))], "en") == cat
    weighted = bm25.search_weighted(index, {"q": {**dict.fromkeys(words, 1.0), "cat": 1.0}})
    assert weighted["q"] == pytest.approx(cat["q"])
    monkeypatch.setattr(bm25, "MAX_CLAUSES", 2)
    with caplog.at_level("WARNING", logger="bench.methods.retrieve.bm25"):
        cut = bm25.search_weighted(index, {"q": {"cat": 3.0, "w1": 2.0, "w2": 1.0}})
        plain = bm25.search(index, [("q", "cat w1 w2")], "en")
    assert cut["q"] == pytest.approx({d: 3 * v for d, v in cat["q"].items()}, rel=1e-3) and plain == cat
    assert [r.getMessage() for r in caplog.records] == [
        "query q has 3 distinct terms: keeping the 2 of highest weight",
        "query q has 3 distinct terms: keeping the first 2"]


@pytest.mark.integration
def test_sw_en_bm25_and_oracle_map(real_data):
    from bench.data.pairs import get_pair

    pair = get_pair("sw-en")
    collection = pair.collection()
    index = bm25.build_index(collection, "en")
    raw = bm25.search(index, [(q.query_id, q.text) for q in collection.queries], "en")
    oracle = bm25.search(index, [(q.query_id, q.translation) for q in collection.queries], "en")
    raw_map = means(per_query(raw, collection.qrels, ["AP"]))["AP"]
    oracle_map = means(per_query(oracle, collection.qrels, ["AP"]))["AP"]
    assert 0.28 <= raw_map <= 0.36 and 0.62 <= oracle_map <= 0.72  # the acceptance ranges
    assert raw_map == pytest.approx(0.3265, abs=5e-4)  # measured with Lucene (Anserini 1.7.1)
    assert oracle_map == pytest.approx(0.6885, abs=5e-4)
    assert all(len(docs) <= 1000 for docs in oracle.values())


def test_bm25_parameters_are_options_recorded_in_the_spec(bench_home, tmp_path):
    """Issue 26: k1 and b as run options (--bm25-k1, --bm25-b): the run scores with them, as Lucene's BM25 with
    those parameters does, and the system's recorded spec carries them (another identity)."""
    from bench.experiment.plan import plan_run
    from bench.systems import get_system
    from bench.systems.options import RunOptions

    pair = load_pair_file(TINY / "pair.yaml")
    index = bm25.build_index(pair.collection(), "en")
    queries = [(q.query_id, q.text) for q in pair.collection().queries]
    default, tuned = bm25.search(index, queries, "en"), bm25.search(index, queries, "en", k1=1.2, b=0.75)
    assert default != tuned  # the parameters reach Lucene
    [result] = plan_run(TINY / "pair.yaml", "bm25", options={"bm25_k1": 1.2, "bm25_b": 0.75},
                        runs=tmp_path / "runs").execute()
    from bench.results.runs import read_trec

    stored = read_trec(result.path / "run.trec")
    assert {q: set(d) for q, d in stored.items()} == {q: set(d) for q, d in tuned.items() if d}
    assert all(stored[q][d] == pytest.approx(tuned[q][d], rel=1e-4) for q in stored for d in stored[q])
    spec = get_system("bm25").spec_for(RunOptions(bm25_k1=1.2, bm25_b=0.75))
    assert spec == {"system": "bm25", "retriever": "bm25", "bm25_k1": 1.2, "bm25_b": 0.75}
    assert get_system("bm25").spec_for(RunOptions()) == {"system": "bm25", "retriever": "bm25"}
