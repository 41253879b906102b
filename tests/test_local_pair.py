import shutil
from pathlib import Path

import ir_datasets
import pytest

from bench.data.collection.local import load_pair_file
from bench.errors import BenchError

TINY = Path(__file__).parent / "data" / "tiny-pair"


@pytest.fixture
def pair_dir(tmp_path) -> Path:
    target = tmp_path / "pair"
    shutil.copytree(TINY, target)
    return target


def test_pair_file_registers_a_collection_in_ir_datasets(pair_dir):
    pair = load_pair_file(pair_dir / "pair.yaml")
    assert (pair.name, pair.query_lang, pair.doc_lang) == ("xx-en", "xx", "en")
    assert pair.measures == ("AP", "RR@10")
    collection = pair.collection()
    assert [q.query_id for q in collection.queries] == ["q1", "q2", "q3"]
    assert collection.queries[0].translation == "cat mat"
    assert collection.docs_count == 4
    assert collection.qrels["q2"] == {"d2": 1, "d3": 1}
    assert pair.dataset_id.startswith("bench-local/xx-en@")
    assert ir_datasets.load(pair.dataset_id).docs_count() == 4
    assert set(collection.sources) == {"queries", "docs", "qrels"}


def test_toml_pair_file(pair_dir):
    (pair_dir / "pair.toml").write_text(
        'name = "xx-en"\nqueries = "queries.tsv"\ndocs = "docs.jsonl"\nqrels = "qrels.txt"\n')
    assert load_pair_file(pair_dir / "pair.toml").collection().docs_count == 4


@pytest.mark.parametrize("mutate,message", [
    (lambda d: (d / "pair.yaml").write_text((d / "pair.yaml").read_text() + "colour: blue\n"),
     r"unknown key\(s\) colour"),
    (lambda d: (d / "qrels.txt").unlink(), r"qrels file .* does not exist"),
    (lambda d: (d / "qrels.txt").write_text("q1 0 d1 1\nq2 d2 1\n"),
     r"qrels.txt:2: expected 'query_id 0 doc_id relevance'"),
    (lambda d: (d / "qrels.txt").write_text("q1 0 d1 yes\n"), r"qrels.txt:1: relevance 'yes' is not an integer"),
    (lambda d: (d / "queries.tsv").write_text("q1\tone\nq1\ttwo\n"), r"duplicate query id 'q1'"),
    (lambda d: (d / "queries.tsv").write_text("q1 has no tab\n"), r"queries.tsv:1: expected query_id<TAB>text"),
    (lambda d: (d / "docs.jsonl").write_text('{"doc_id": "d1", "text": "ok"}\n{"doc_id": \n'),
     r"docs.jsonl:2: not valid JSON"),
    (lambda d: (d / "pair.yaml").write_text("name: [unclosed\n"), r"not valid YAML"),
    (lambda d: (d / "pair.yaml").write_text("name: swahili\nqueries: q\ndocs: d\nqrels: r\n"),
     r"not of the form QQ-DD"),
    (lambda d: (d / "pair.yaml").write_text("name: sw-en\nqueries: queries.tsv\ndocs: docs.jsonl\nqrels: qrels.txt\n"),
     r"is a built-in pair"),
    (lambda d: (d / "pair.yaml").write_text("name: xx-en\nqueries: queries.tsv\n"),
     r"missing required key\(s\) docs, qrels"),
])
def test_malformed_pair_files_fail_with_one_clear_line(pair_dir, mutate, message):
    mutate(pair_dir)
    with pytest.raises(BenchError, match=message) as err:
        load_pair_file(pair_dir / "pair.yaml")
    assert "\n" not in str(err.value)


def test_local_pairs_are_keyed_by_content_and_never_overwritten(pair_dir, tmp_path):
    first = load_pair_file(pair_dir / "pair.yaml")
    copy = tmp_path / "copy"
    shutil.copytree(pair_dir, copy)
    assert load_pair_file(copy / "pair.yaml").dataset_id == first.dataset_id  # same files, same dataset
    shutil.rmtree(pair_dir)  # the registered dataset now reads the remaining copy
    assert first.collection().docs_count == 4
    (copy / "qrels.txt").write_text("q1 0 d1 1\n")
    changed = load_pair_file(copy / "pair.yaml")
    assert changed.dataset_id != first.dataset_id
    assert changed.collection().qrels == {"q1": {"d1": 1}}
    assert len(list(ir_datasets.load(first.dataset_id).qrels_iter())) == 4  # the first dataset is still there


def test_a_byte_order_mark_is_dropped_and_other_bytes_name_the_line(pair_dir):
    queries = pair_dir / "queries.tsv"
    clean = load_pair_file(pair_dir / "pair.yaml").collection().queries
    queries.write_bytes(b"\xef\xbb\xbf" + queries.read_bytes())
    assert load_pair_file(pair_dir / "pair.yaml").collection().queries == clean
    queries.write_bytes(queries.read_bytes() + b"q9\tcaf\xe9\n")
    with pytest.raises(BenchError, match=r"queries.tsv:4: not UTF-8 \(byte 0xe9 at column 7\)"):
        load_pair_file(pair_dir / "pair.yaml")
