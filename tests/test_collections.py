import ir_datasets
import pytest

from bench.data.collection import afriqa
from bench.data.pairs import get_pair

GOLD = [
    {"id": "0", "title": "Kenya", "context": "Kenya is a country.", "question_lang": "Kenya iko wapi?"},
    {"id": "1", "title": "Kenya", "context": "Kenya is a country.", "question_lang": "Swali lingine?"},
    {"id": "2", "title": None, "context": "Untitled passage.", "question_lang": "Hii ni nini?"},
    {"id": "3", "title": "X", "context": "Y", "question_lang": "Different text"},
]
QUESTIONS = [
    {"id": 0, "question": "Kenya iko wapi?", "translated_question": "Where is Kenya?"},
    {"id": 1, "question": "Swali lingine? ", "translated_question": "Another question?"},
    {"id": 2, "question": "Hii ni nini?", "translated_question": "What is this?"},
    {"id": 3, "question": "Asked otherwise", "translated_question": "Mismatch"},
    {"id": 4, "question": "No gold", "translated_question": "No gold"},
]


def test_corpus_deduplicates_passages_with_stable_ids():
    docs, ids = afriqa.build_corpus(GOLD + [{"id": "9", "title": None, "context": None}])
    assert [d.title for d in docs] == ["Kenya", "", "X", ""]
    assert docs[0].doc_id == afriqa.doc_id_for("Kenya", "Kenya is a country.")
    assert docs[1].default_text() == "Untitled passage."
    assert len(ids) == 4


def test_queries_join_gold_by_id_and_drop_mismatches():
    docs, ids = afriqa.build_corpus(GOLD)
    queries, qrels, notes = afriqa.build_queries(QUESTIONS, GOLD, ids)
    assert [q.query_id for q in queries] == ["0", "1", "2"]
    assert queries[0].translation == "Where is Kenya?"
    assert notes == {"questions": 5, "without_gold_passage": 1, "gold_text_mismatch": 1}
    kenya = afriqa.doc_id_for("Kenya", "Kenya is a country.")
    assert qrels["0"] == {kenya: 1} and qrels["1"] == {kenya: 1}


@pytest.mark.integration
@pytest.mark.parametrize("pair,queries,dropped", [
    ("sw-en", 294, {"questions": 302, "without_gold_passage": 7, "gold_text_mismatch": 1}),
    ("ha-en", 300, {"questions": 300, "without_gold_passage": 0, "gold_text_mismatch": 0}),
    ("yo-en", 254, {"questions": 332, "without_gold_passage": 78, "gold_text_mismatch": 0}),
])
def test_afriqa_sizes_through_ir_datasets(real_data, pair, queries, dropped):
    collection = get_pair(pair).collection()
    assert len(collection.queries) == queries
    assert collection.docs_count == 5414
    assert collection.notes == dropped
    assert all(q.translation for q in collection.queries)
    assert len(collection.qrels) == queries and all(len(d) == 1 for d in collection.qrels.values())
    # the same collection through the plain ir_datasets API
    dataset = ir_datasets.load(get_pair(pair).dataset_id)
    assert sum(1 for _ in dataset.queries_iter()) == queries
    assert dataset.docs_count() == 5414
    assert sum(1 for _ in dataset.qrels_iter()) == queries


@pytest.mark.integration
def test_sw_en_first_query_and_its_gold_passage(real_data):
    collection = get_pair("sw-en").collection()
    first = collection.queries[0]
    assert first.text == "Musikari Nazi Kombo anahudumu kama mbunge wa kuteuliwa katika eneo gani?"
    assert first.translation == "Which constituency does nominated MP Musikari Kombo represent?"
    (gold,) = collection.qrels[first.query_id]
    doc = next(d for d in collection.iter_docs() if d.doc_id == gold)
    assert doc.title == "Musikari Kombo" and "Webuye" in doc.text
