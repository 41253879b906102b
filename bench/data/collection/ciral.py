"""CIRAL v1.0 (ciralproject/ciral): English queries over news passages in Swahili, Hausa and Yoruba.

CIRAL's topics were written in the African language ("native") and translated into English by people;
the cross-lingual task asks the English topic of the passages in the African language, so a pair is
``en-<lang>-ciral`` (queries in English, documents in ``lang``). A query's ``translation`` is its native
topic: the human translation into the documents' language, which the oracle systems search with (the
"BM25 human query translation" condition of pyserini's 2CR page).

Topics and qrels come from castorini/anserini-tools at a fixed commit (:class:`RemoteFile`, sha256
declared here, mirrored). A query is an English topic that has a native version and judgments (the
upstream files have a topic without a native version, a native id written twice and judgments of a
topic that has none: dropped and counted in the notes). The passages come from pyserini's prebuilt
Lucene index ``ciral-v1.0-<lang>`` (URL and md5 as data, from ``pyserini.prebuilt_index_info``), which
stores each passage raw (Anserini's ``MrTyDiCollection``: a JSON object with ``docid``, ``title``,
``text``). The module declares them as data (:func:`passages`: an :class:`ExternalCorpus` packed as a
Lucene index); `bench fetch` (and `bench run`) read them out of the index once
(:mod:`bench.methods.retrieve.prebuilt`) into ``BENCH_HOME/corpora``, one JSON record a line, and
:func:`passage_records` parses them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable, Iterator

from bench.data.collection.records import Doc, LazyDataset, Query, Records, lazy_dataset, register_dataset
from bench.data.collection.remote import (ExternalCorpus, LazyDocs, Packing, Source, UrlFile, read_qrels,
                                          read_topics)
from bench.errors import BenchError
from bench.infra.downloads import fetch, RemoteFile

log = logging.getLogger(__name__)

REPO = "castorini/anserini-tools"
COMMIT = "5b819c1a45c8a0a3ec9426f476694f44a29dfaf3"
LICENSE = "Apache-2.0"
SHA256 = {
    "qrels/qrels.ciral-v1.0-ha-test-a.tsv": "8731e0a830adca51925cbed317f6786cd66052480d8a0dc31b3734f6eeea63e4",
    "qrels/qrels.ciral-v1.0-ha-test-b.tsv": "00d628f42f6185c66663f5b20f5f42546f5947ad18b4e6f56155e5278edfcdf8",
    "qrels/qrels.ciral-v1.0-sw-test-a.tsv": "b233f415f7822f6a3d7297af47be971f0d44be466898ecfdcb48a98144eb9750",
    "qrels/qrels.ciral-v1.0-sw-test-b.tsv": "a9a9102ee4fcb5182c93292c962d78465ef09e2d66c3066589e762214a0607fb",
    "qrels/qrels.ciral-v1.0-yo-test-a.tsv": "ae824b55e0c4b89d554d000e682b4ea88e9b02fd91e1c903e621c838b2d1858d",
    "qrels/qrels.ciral-v1.0-yo-test-b.tsv": "2cdb946d6fa1f49f84fc08399c5677fb62a346a65d98f9956a483b44eb7dd627",
    "topics/topics.ciral-v1.0-ha-test-a-native.tsv": "ac9306db4f364c9da19607fbbc7dd1b9d1f3a82bf3016bbb648024a5625bcade",
    "topics/topics.ciral-v1.0-ha-test-a.tsv": "179abec0a3ddc5e8300c2cdd588bd2a4a48b1a91c88be9356352248c5e4da151",
    "topics/topics.ciral-v1.0-ha-test-b-native.tsv": "094a09c35477629ebe372b1164725c69b7ca2564827acaceb0872d8a88e9a47d",
    "topics/topics.ciral-v1.0-ha-test-b.tsv": "2f70d0a7f41730079af80016d0629cf7a3e16a98b6d329f37b62d376ff301881",
    "topics/topics.ciral-v1.0-sw-test-a-native.tsv": "c7903f51769c407e73988528a8728bfeafaf0297d3a4d49343a7906ded788efa",
    "topics/topics.ciral-v1.0-sw-test-a.tsv": "6a654495eb2d00f6b4e28102baf5a43e69cdb0b31a93483d0950f7fc7ee17171",
    "topics/topics.ciral-v1.0-sw-test-b-native.tsv": "1d739cfea7f448298eb3b4657f4dd96e239f0674828a6a3ab4bef4b1bb232f42",
    "topics/topics.ciral-v1.0-sw-test-b.tsv": "c125e0baa54a233a6d7cc143e8aa229e9e6629ee87d49a8384aee796cb2dd690",
    "topics/topics.ciral-v1.0-yo-test-a-native.tsv": "d4ef321b0a2d4fb08e0777f4fe83842b40b883e29f6d4d8f59cb965ddefe2e1b",
    "topics/topics.ciral-v1.0-yo-test-a.tsv": "bdc9b143d8637b61b27ebdf056d1b675ecf94ad002a1de7fd163e2a22940db76",
    "topics/topics.ciral-v1.0-yo-test-b-native.tsv": "121e48347ffc7baf601d168680ca22212ef2620ff09175597e2e9d92ef516927",
    "topics/topics.ciral-v1.0-yo-test-b.tsv": "157bb6098d35182a7d001d0617dcb86c6f6fcbbebff0c2b5a1f32e22ad8d4849",
}
LANGUAGES = {"sw": "Swahili", "ha": "Hausa", "yo": "Yoruba"}
SPLITS = ("test-b", "test-a")  # test-b: the larger, reported split (pyserini's 2CR baselines); test-a: the first
_INDEX_URL = "https://rgw.cs.uwaterloo.ca/pyserini/indexes/lucene-index.ciral-v1.0-{lang}.20230721.e850ea.tar.gz"
# pyserini.prebuilt_index_info.TF_INDEX_INFO_CIRAL: md5, compressed size, documents
INDEXES = {
    lang: UrlFile(f"pyserini's prebuilt index ciral-v1.0-{lang} (the CIRAL {LANGUAGES[lang]} passages)",
                  _INDEX_URL.format(lang=lang), f"md5:{md5}", size, "Apache-2.0", docs)
    for lang, md5, size, docs in (("sw", "1236a1a4c87268d98ec6534cd99aaada", 896921754, 949013),
                                  ("ha", "9bef13f2b528d3a5712ce412c3c264f7", 671653035, 715355),
                                  ("yo", "655e571314ed85cbfe637246c3d18110", 94610259, 82095))
}
PASSAGES_VERSION = 1  # bump when the passages file written from an index changes
PASSAGES_FILE = "passages.jsonl"
DATASETS = {(lang, split): f"ciral/en-{lang}/{split}" for lang in LANGUAGES for split in SPLITS}


def remote(path: str) -> RemoteFile:
    return RemoteFile(REPO, COMMIT, path, SHA256[path], LICENSE)


def topics_file(lang: str, split: str, native: bool = False) -> RemoteFile:
    return remote(f"topics/topics.ciral-v1.0-{lang}-{split}{'-native' if native else ''}.tsv")


def qrels_file(lang: str, split: str) -> RemoteFile:
    return remote(f"qrels/qrels.ciral-v1.0-{lang}-{split}.tsv")


def pair_name(lang: str, split: str) -> str:
    return f"en-{lang}-ciral" + ("" if split == SPLITS[0] else f"-{split}")


def _split_of(dataset_id: str) -> tuple[str, str]:
    (key,) = [k for k, v in DATASETS.items() if v == dataset_id]
    return key


def files_for(dataset_id: str) -> list[RemoteFile]:
    """The topics and qrels a dataset is built from (for `bench fetch`; the passages are not on GitHub)."""
    lang, split = _split_of(dataset_id)
    return [topics_file(lang, split), topics_file(lang, split, native=True), qrels_file(lang, split)]


def passages_key(lang: str) -> dict:
    index = INDEXES[lang]
    return {"artifact": "ciral-passages", "version": PASSAGES_VERSION, "index": index.url, "digest": index.digest}


def passages(lang: str) -> ExternalCorpus:
    """The passages of ``lang``: stored raw in pyserini's prebuilt index, kept as :data:`PASSAGES_FILE`."""
    return ExternalCorpus(f"CIRAL {lang} passages", INDEXES[lang], passages_key(lang), PASSAGES_FILE,
                          pair_name(lang, SPLITS[0]), Packing.LUCENE_INDEX)


def corpus_for(dataset_id: str) -> ExternalCorpus:
    return passages(_split_of(dataset_id)[0])


def passages_ready(dataset_id: str) -> bool:
    return corpus_for(dataset_id).ready()


# --- parsing --------------------------------------------------------------------------------------


def build_queries(english: list[tuple[str, str]], native: list[tuple[str, str]], qrels: dict[str, dict[str, int]]
                  ) -> tuple[list[Query], dict[str, dict[str, int]], dict[str, int]]:
    """The queries: English topics with a native version and judgments; the native topic is the translation."""
    translation: dict[str, str] = {}
    notes = {"english_topics": len(english), "native_repeated_ids": 0, "without_native": 0, "without_qrels": 0,
             "repeated_english_ids": 0, "qrels_without_topic": 0}
    for qid, text in native:
        if qid in translation:
            notes["native_repeated_ids"] += 1  # upstream: a second topic written under the same id; the first is kept
            continue
        translation[qid] = text
    queries, seen = [], set()
    for qid, text in english:
        if qid in seen:
            notes["repeated_english_ids"] += 1
        elif qid not in translation:
            notes["without_native"] += 1
        elif not any(rel > 0 for rel in qrels.get(qid, {}).values()):
            notes["without_qrels"] += 1
        else:
            queries.append(Query(qid, text, translation[qid]))
        seen.add(qid)
    kept = {q.query_id for q in queries}
    notes["qrels_without_topic"] = sum(1 for qid in qrels if qid not in seen)
    return queries, {qid: docs for qid, docs in qrels.items() if qid in kept}, notes


def passage_records(records: Iterable[str], source: str = "CIRAL passages") -> Iterator[Doc]:
    """Docs from upstream-format records: one JSON object per record (as the index stores it raw), with
    ``docid``, ``title`` and ``text``; a record that is not one is an error naming it; a repeated docid
    keeps its first passage."""
    seen = set()
    for n, record in enumerate(records, 1):
        try:
            row = json.loads(record)
        except (TypeError, json.JSONDecodeError) as exc:
            raise BenchError(f"{source}: record {n} is not JSON ({exc})", "fetch the passages again") from None
        if not isinstance(row, dict) or not isinstance(row.get("docid"), str) or not isinstance(row.get("text"), str):
            raise BenchError(f"{source}: record {n} has no docid and text", "fetch the passages again")
        if row["docid"] in seen:
            log.warning("%s: record %d repeats docid %s (the first is kept)", source, n, row["docid"])
            continue
        seen.add(row["docid"])
        yield Doc(row["docid"], str(row.get("title") or ""), row["text"])


def passages_path(lang: str) -> Path:
    return passages(lang).path


def read_passages(lang: str) -> list[Doc]:
    """The cached passages of ``lang`` (read out of pyserini's index by `bench fetch`), or one clear error."""
    corpus = passages(lang)
    if not corpus.ready():
        raise corpus.missing()
    path = corpus.path
    with open(path, encoding="utf-8") as f:
        docs = list(passage_records((line for line in f if line.strip()), str(path)))
    log.info("CIRAL %s: %d passages", lang, len(docs))
    return docs


def load(lang: str, split: str) -> Records:
    files = files_for(DATASETS[(lang, split)])
    english, native = read_topics(fetch(files[0]), "CIRAL"), read_topics(fetch(files[1]), "CIRAL")
    qrels = read_qrels(fetch(files[2]), "CIRAL")
    queries, qrels, notes = build_queries(english, native, qrels)
    sources = {rf.path: rf.sha256 for rf in files}
    sources[INDEXES[lang].url] = INDEXES[lang].digest
    log.info("CIRAL en-%s/%s: %d queries (%s)", lang, split, len(queries),
             ", ".join(f"{k} {v}" for k, v in notes.items()))
    return Records(queries, LazyDocs(lambda: read_passages(lang)), qrels, sources, notes)


def register() -> None:
    for (lang, split), dataset_id in DATASETS.items():
        if lazy_dataset(dataset_id) is None:
            loader = lambda lang=lang, split=split: load(lang, split)  # noqa: E731
            register_dataset(dataset_id, LazyDataset(dataset_id, "en", lang, loader))


SOURCE = Source(tuple(DATASETS.values()), files_for, register, corpus_for)
