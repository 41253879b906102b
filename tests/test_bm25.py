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


# --- issue 25/26: the index keyed by the documents, Lucene's length limit, Java failures -----------------------


def _pair_copy(tmp_path, name: str, queries: str | None = None, extra_docs: str = "") -> Path:
    """A copy of the tiny pair in ``tmp_path/name`` (other queries, more documents)."""
    import shutil

    shutil.copytree(TINY, tmp_path / name)
    if queries is not None:
        (tmp_path / name / "queries.tsv").write_text(queries)
    with open(tmp_path / name / "docs.jsonl", "a") as docs:
        docs.write(extra_docs)
    return tmp_path / name / "pair.yaml"


def test_collections_of_the_same_documents_share_one_index(bench_home, tmp_path):
    """Issue 26: the index is keyed by the documents, not the collection: other queries (and so other
    qrels' queries) reuse it; another document is another index."""
    first = load_pair_file(_pair_copy(tmp_path, "a")).collection()
    other_queries = load_pair_file(_pair_copy(tmp_path, "b", queries="q1\tpaka\nq2\tmbwa mbwa\n")).collection()
    another_doc = '{"doc_id": "d5", "text": "a cat"}\n'
    other_docs = load_pair_file(_pair_copy(tmp_path, "c", extra_docs=another_doc)).collection()
    assert len({first.dataset_id, other_queries.dataset_id, other_docs.dataset_id}) == 3  # three collections
    index = bm25.build_index(first, "en")
    assert bm25.build_index(other_queries, "en").path == index.path
    assert bm25.build_index(other_docs, "en").path != index.path
    assert bm25.build_index(first, "yy").path != index.path  # another analyzer
    assert len(list((bench_home / "indexes").glob("*/.complete"))) == 3
    import json

    assert json.loads((index.path.parent / "key.json").read_text()) == {
        "artifact": "lucene-index", "version": bm25.INDEX_VERSION, "docs": first.docs_fingerprint,
        "analyzer": "lucene-english"}


def test_the_documents_fingerprint_is_of_ids_and_texts_and_read_once_per_corpus(bench_home, monkeypatch):
    """The index's key reads the corpus once: a later collection of the same files finds the value remembered."""
    import hashlib

    from bench.data.collection import Collection

    pair = load_pair_file(TINY / "pair.yaml")
    texts = [("d1", "Cats The cat sat on the mat. Paka mkeka."), ("d2", "Dogs bark loudly at night."),
             ("d3", "A cat and a dog met a mbwa."), ("d4", "nyumba kubwa: a big house")]
    by_hand = hashlib.sha256("".join(f"{i}\0{t}\0" for i, t in texts).encode()).hexdigest()[:16]
    assert pair.collection().docs_fingerprint == by_hand
    monkeypatch.setattr(Collection, "iter_docs", lambda self: pytest.fail("the corpus was read again"))
    assert Collection(pair.dataset_id).docs_fingerprint == by_hand


def test_a_document_over_lucenes_length_limit_is_cut_with_a_warning(bench_home, tmp_path, caplog):
    """Issue 25: Lucene (Anserini's Jackson reader) takes at most 20,000,000 characters of one document and
    silently left a longer one out. It is cut after its last whole word within the limit, with a warning
    naming it; the words kept are searchable, the ones cut are not."""
    import json

    assert bm25.max_doc_chars() == 20_000_000
    text = "cat " * 4_999_998 + "zebra" * 3 + " mouse"  # 20,000,013 characters; the limit falls inside zebra...
    pair = load_pair_file(_pair_copy(tmp_path, "big", extra_docs=json.dumps({"doc_id": "big", "text": text}) + "\n"))
    collection = pair.collection()
    with caplog.at_level("WARNING", logger="bench.methods.retrieve.bm25"):
        index = bm25.build_index(collection, "en")
    assert [r.getMessage() for r in caplog.records] == [
        f"document big of {collection.dataset_id} has 20,000,013 characters, more than Lucene reads of one "
        "document (20,000,000): indexing its first 19,999,991"]
    run = bm25.search(index, [("cat", "cat"), ("mouse", "mouse"), ("zebra", "zebra")], "en")
    assert "big" in run["cat"] and run["mouse"] == {} and run["zebra"] == {}


@pytest.mark.parametrize("contents,kept", [
    ("ab cd", "ab cd"),  # within the limit
    ("ab \U0001F600\U0001F600 cd", "ab"),  # the limit splits the second emoji (two UTF-16 units): its word goes
    ("abc def", "abc"),  # the limit falls after a space: the words before it
    ("abcdefgh", "abcdef"),  # one word over the limit: its first characters
])
def test_the_cut_keeps_whole_words_within_the_limit_in_utf16_units(contents, kept):
    class Named:
        dataset_id = "x"

    assert bm25._within_length(Named(), "d", contents, 6) == kept


def _java_exception(classname: str, message: str, *trace: str):
    from bench.methods.retrieve.lucene import ensure_jvm

    ensure_jvm()  # jnius is imported after the JVM's options are set
    from jnius import JavaException

    return JavaException(f"JVM exception occurred: {classname}: {message}", classname, message, list(trace))


class _FakeIndexer:
    """pyserini's LuceneIndexer as a full disk leaves it: ``closing`` is what its close() does."""

    closing = None

    def __init__(self, args, threads):
        self.object = self

    def addRawDocuments(self, batch):  # noqa: N802 (Anserini's name)
        return len(batch)

    def close(self):
        type(self).closing()


def _anserini_logs_the_full_disk():
    """Anserini's SimpleIndexer.close() logs a failed commit to standard output and returns."""
    import os

    os.write(1, b"2026-01-01 00:00:00,000 ERROR [main] index.SimpleIndexer (SimpleIndexer.java:254) - "
                b"No space left on device\n")


def _lucene_raises_the_full_disk():
    raise _java_exception("org.apache.lucene.store.AlreadyClosedException", "this IndexWriter is closed",
                          "org.apache.lucene.index.IndexWriter.ensureOpen(IndexWriter.java:914)", "Caused by:",
                          "java.io.IOException: No space left on device",
                          "java.base/sun.nio.ch.UnixFileDispatcherImpl.write0(Native Method)")


def _bm25_run_with_indexer_closing(monkeypatch, capfd, tmp_path, closing):
    """``bench run --systems bm25`` on the tiny pair, its indexer's commit replaced by ``closing``: the exit code,
    stdout, stderr and the index directory it would have built."""
    import pyserini.index.lucene

    from bench.infra import store
    from cli_run import run_main

    pair = load_pair_file(TINY / "pair.yaml")
    where = store.artifact_dir("indexes", bm25.index_key(pair.collection(), "en"))
    monkeypatch.setattr(_FakeIndexer, "closing", staticmethod(closing))
    monkeypatch.setattr(pyserini.index.lucene, "LuceneIndexer", _FakeIndexer)
    code, out, err = run_main(monkeypatch, capfd, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "bm25",
                              "--runs", str(tmp_path / "runs"), "--no-report")
    return code, out, err, where


@pytest.mark.parametrize("closing", [_anserini_logs_the_full_disk, _lucene_raises_the_full_disk])
def test_a_full_disk_while_indexing_is_one_line_and_leaves_nothing(bench_home, tmp_path, monkeypatch, capfd, closing):
    """Issue 25: a full BENCH_HOME while Lucene indexes (seen for real on a small tmpfs: the commit fails, and
    Anserini either logs it on stdout and returns, after which the index has no segments, or raises) is one
    line naming the device, with Java's output kept off the terminal and nothing left in BENCH_HOME."""
    code, out, err, where = _bm25_run_with_indexer_closing(monkeypatch, capfd, tmp_path, closing)
    assert (code, out) == (2, "")
    assert err == (f"error: no space left on the device of {where.parent} (writing {where.name}, Lucene indexing) "
                   "(free some space there, or point BENCH_HOME, --runs or --reports at another disk)\n")
    assert list(where.parent.iterdir()) == [] and not (tmp_path / "runs").exists()


def test_a_damaged_index_is_one_line_naming_it(bench_home, tmp_path, monkeypatch, capfd):
    """A cached index whose Lucene files are gone: one line naming it and how to rebuild it, no Java trace."""
    from cli_run import run_main

    pair = load_pair_file(TINY / "pair.yaml")
    index = bm25.build_index(pair.collection(), "en")
    for segments in index.path.glob("segments_*"):
        segments.unlink()
    code, out, err = run_main(monkeypatch, capfd, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "bm25",
                              "--runs", str(tmp_path / "runs"), "--no-report")
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert err.startswith(f"error: Lucene failed opening {index.path}: IndexNotFoundException: no segments* file "
                          f"found in ")
    assert err.endswith(f"(if the index is damaged, delete {index.path.parent} to build it again; --debug shows "
                        "Java's trace)\n")
    assert not (tmp_path / "runs").exists()


def test_another_java_failure_while_indexing_is_one_line_naming_its_cause(bench_home, tmp_path, monkeypatch, capfd):
    def input_output_error():
        raise _java_exception("org.apache.lucene.store.AlreadyClosedException", "this IndexWriter is closed",
                              "org.apache.lucene.index.IndexWriter.ensureOpen(IndexWriter.java:914)", "Caused by:",
                              "java.io.IOException: Input/output error", "java.base/sun.nio.ch.Native.write0")

    code, out, err, where = _bm25_run_with_indexer_closing(monkeypatch, capfd, tmp_path, input_output_error)
    assert (code, out) == (2, "")
    assert err == (f"error: Lucene failed indexing {where}: AlreadyClosedException: this IndexWriter is closed (caused "
                   "by IOException: Input/output error) (rerun with --debug to see Java's own output and trace)\n")
    assert list(where.parent.iterdir()) == [] and not (tmp_path / "runs").exists()
