"""AfriQA (masakhane-io/afriqa) as CLIR collections: African-language questions over English passages.

For a language and split, the queries are the questions that have a gold passage whose question text
matches the query's (joined by id; rows without a gold passage, or whose text differs, are dropped and
counted). The corpus is every unique English gold passage (title + context) from the English-pivot
gold-passage files of all eight languages and all splits; each query's qrel is its own gold passage.
The human English translation of each question is kept for the oracle systems.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path

from bench.data.collection.records import Doc, LazyDataset, Query, Records, lazy_dataset, register_dataset
from bench.data.collection.remote import Source
from bench.infra.downloads import fetch, RemoteFile

log = logging.getLogger(__name__)

REPO = "masakhane-io/afriqa"
COMMIT = "5c29933753692c28773c34ac1f68482007f1d2bb"
LICENSE = "CC-BY-4.0"
QUERY_PATH = "data/queries/{lang3}/queries.afriqa.{lang3}.en.{split}.json"
GOLD_PATH = "data/gold_passages/{lang3}/gold_span_passages.afriqa.{lang3}.en.{split}.json"
# (AfriQA's language code, split) -> sha256 of its questions (QUERY_PATH)
_QUERY_SHA256 = {
    ("swa", "train"): "d5d03c1bf62de83e1dcd951483717773c02b1c2d6fd7fdaaa750bcc7c0751776",
    ("swa", "dev"): "cdc61a37956592318f98c8d6ca7cc3908bfbc5bf2cb30af4c13203c4f446a054",
    ("swa", "test"): "0804e99d130a7d9357139686db1957aff33e82ab4d8879c65839af35329d690a",
    ("hau", "train"): "0788dacfad5e295173cc3e1854d18675c9bac62713a4389560dc940a203d6972",
    ("hau", "dev"): "200d9461b99123297bb585f9ea5f651ae00dbebfd6135d8b7a7d9bfe5730f579",
    ("hau", "test"): "34f89d0110bf5feea02ea956743e76d1e7ca6a0e552133fe75043e9de56d1728",
    ("yor", "train"): "e5005c216a0926c0f9f1ca6c34903ac8d52a21b8921bb87ce5f92d479968375f",
    ("yor", "dev"): "c195aafb72f1c38046a52a4e9d3965bb6cb2383533e3b48d836846ffe8c89093",
    ("yor", "test"): "85027dcfd52e5783ac97acd2b35e5e56bc42a2c4baf8c4cb7b5e5de2c925bcde",
}
# (language code, split) -> sha256 of its English-pivot gold passages (GOLD_PATH): the corpus is all of them
_GOLD_SHA256 = {
    ("bem", "dev"): "3ec8d5a9f74623a940092399970c6140c6c61322169285606daeae67f41371ae",
    ("bem", "test"): "72e7f7e3dd207b955968403f9a3699fb11aef996981d142063614e7f434e7c52",
    ("bem", "train"): "17dfc33975c94ef5372a72b27108d04a90c2a54096c5fa31c2c1272f0c69037d",
    ("hau", "dev"): "ef9cb217e8ea4922935c7fb9e7456364e91c2712519390071170a18131e9e132",
    ("hau", "test"): "e1a0d530d75641760387a2947044d69090c15db620fd9a4dbcf8dc52940d7687",
    ("hau", "train"): "21d975df45d8e1316c964f4fe8521dd7ab455fbe1b0edea1564824352b67be2e",
    ("ibo", "dev"): "9636bfa38368c69319f1b7a2bca1ab995c7b4ad63c5801a25da53b34a5fa4e02",
    ("ibo", "test"): "490af9c615ec5e56ec50a3da21efed82df5f67c794ac5d8d6c5e7d30845cc48d",
    ("ibo", "train"): "5300a29efc78c3dec1fc68c66eb1fec3a72577de4136a41d7c85aac355f1a5b8",
    ("kin", "dev"): "5598ac675fecfc5e7009a3cb1a511e81c69983a763715726d3dda2bcd3ed9d28",
    ("kin", "test"): "fe067f3aa30c581adbaae7d0012eea5290b5f3119396bbb1c70d665d9e6f31eb",
    ("kin", "train"): "967a849f4e6d58ebbb3ea81bbbddd4f9d00a30d8752c2354cb894c1596285dc2",
    ("swa", "test"): "18609b69d21c37b737426baed0a4f02495ab237285dd524e8f502f756350d0bf",
    ("twi", "dev"): "d9bd337c4a47bb1dbccffb74fa170e418911c7b6c3cbb8c034ae17d6794ada79",
    ("twi", "test"): "329221245f9880896b9038405c44b7f8ef48db3067aa556fbd82819de46b954d",
    ("twi", "train"): "cdbba2a4d6a40e6e8fd587d25cb56e57ea2fe888bac254f66fc29409cec1afaa",
    ("yor", "test"): "0aa0f6c1769f07788c918fd0dc1848b70ec0f06e8de9a6893d9037b9ff05abaa",
    ("yor", "train"): "864d91d1cab11b587b6535e6a293cc21ba2cf62ce7cc44f175f0fd7656f4925c",
    ("zul", "dev"): "3332f7063e65d80cad27d6625de1c9681569a357a6e6eab64132416e64871689",
    ("zul", "test"): "e6edc93eed66267a0f8b98a96bc4ef104c66e33a903678fa260219e8c66efd75",
    ("zul", "train"): "a5bd82873ef476aaad58cbfb7f5b4234d5f4798aa09ba934dc23edc397355655",
}
SHA256 = {  # path -> sha256 of every file the collections are built from
    **{QUERY_PATH.format(lang3=lang3, split=split): sha for (lang3, split), sha in _QUERY_SHA256.items()},
    **{GOLD_PATH.format(lang3=lang3, split=split): sha for (lang3, split), sha in _GOLD_SHA256.items()},
}

# bench's pair languages (ISO 639-1) -> AfriQA's file codes (ISO 639-3)
LANG3 = {"sw": "swa", "ha": "hau", "yo": "yor"}
# (pair, split) -> the registered ir_datasets id; test splits are reported, the others are for tuning
DATASETS = {
    ("sw-en", "test"): "afriqa/sw-en/test",
    ("ha-en", "test"): "afriqa/ha-en/test",
    ("yo-en", "test"): "afriqa/yo-en/test",
    ("ha-en", "dev"): "afriqa/ha-en/dev",
    ("yo-en", "train"): "afriqa/yo-en/train",
}


def remote(path: str) -> RemoteFile:
    return RemoteFile(REPO, COMMIT, path, SHA256[path], LICENSE)


def query_file(lang3: str, split: str) -> RemoteFile:
    return remote(QUERY_PATH.format(lang3=lang3, split=split))


def gold_file(lang3: str, split: str) -> RemoteFile:
    return remote(GOLD_PATH.format(lang3=lang3, split=split))


def corpus_files() -> list[RemoteFile]:
    return [gold_file(lang3, split) for lang3, split in _GOLD_SHA256]


def files_for(dataset_id: str) -> list[RemoteFile]:
    """Every file the dataset is built from (for `bench fetch`)."""
    (pair, split), = [k for k, v in DATASETS.items() if v == dataset_id]
    lang3 = LANG3[pair.split("-")[0]]
    return [query_file(lang3, split), *corpus_files()]


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def doc_id_for(title: str, context: str) -> str:
    """A stable id from the passage's content, independent of file order."""
    return "afriqa-" + hashlib.sha1(f"{title}\x00{context}".encode("utf-8")).hexdigest()[:12]


def build_corpus(gold_rows: list[dict]) -> tuple[list[Doc], dict[tuple[str, str], str]]:
    docs: list[Doc] = []
    ids: dict[tuple[str, str], str] = {}
    for row in gold_rows:
        key = (row.get("title") or "", row.get("context") or "")
        if key not in ids:
            ids[key] = doc_id_for(*key)
            docs.append(Doc(ids[key], *key))
    if len(set(ids.values())) != len(ids):
        raise RuntimeError("AfriQA passage ids collide")  # a sha1 prefix collision: never seen
    return docs, ids


def build_queries(
    questions: list[dict], gold_rows: list[dict], doc_ids: dict[tuple[str, str], str]
) -> tuple[list[Query], dict[str, dict[str, int]], dict[str, int]]:
    gold_by_id = {str(row["id"]): row for row in gold_rows}
    queries, qrels = [], {}
    notes = {"questions": len(questions), "without_gold_passage": 0, "gold_text_mismatch": 0}
    for q in questions:
        qid = str(q["id"])
        gold = gold_by_id.get(qid)
        if gold is None:
            notes["without_gold_passage"] += 1
            continue
        if (gold.get("question_lang") or "").strip() != q["question"].strip():
            notes["gold_text_mismatch"] += 1
            log.debug("dropping query %s: gold row asks %r", qid, gold.get("question_lang"))
            continue
        queries.append(Query(qid, q["question"], q.get("translated_question")))
        qrels[qid] = {doc_ids[(gold.get("title") or "", gold.get("context") or "")]: 1}
    return queries, qrels, notes


@lru_cache(maxsize=1)
def _corpus() -> tuple[list[Doc], dict[tuple[str, str], str]]:
    """The shared English corpus (one parse per process, whichever pairs are loaded)."""
    return build_corpus([row for rf in corpus_files() for row in _read_jsonl(fetch(rf))])


def load(lang: str, split: str) -> Records:
    lang3 = LANG3[lang]
    sources = {rf.path: rf.sha256 for rf in corpus_files()}
    docs, doc_ids = _corpus()
    qf, gf = query_file(lang3, split), gold_file(lang3, split)
    sources[qf.path] = qf.sha256
    queries, qrels, notes = build_queries(_read_jsonl(fetch(qf)), _read_jsonl(fetch(gf)), doc_ids)
    log.info(
        "AfriQA %s-en/%s: %d queries (%d questions, %d without gold passage, %d text mismatch), %d passages",
        lang, split, len(queries), notes["questions"], notes["without_gold_passage"],
        notes["gold_text_mismatch"], len(docs),
    )
    return Records(queries, docs, qrels, sources, notes)


def register() -> None:
    for (pair, split), dataset_id in DATASETS.items():
        if lazy_dataset(dataset_id) is None:
            lang = pair.split("-")[0]
            loader = lambda lang=lang, split=split: load(lang, split)  # noqa: E731
            register_dataset(dataset_id, LazyDataset(dataset_id, lang, "en", loader))


SOURCE = Source(tuple(DATASETS.values()), files_for, register)
