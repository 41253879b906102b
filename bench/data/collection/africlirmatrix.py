"""AfriCLIRMatrix v1.0 (castorini/africlirmatrix): English Wikipedia titles as queries over Wikipedia
articles in Swahili, Hausa and Yoruba, with graded judgments mined from Wikidata links (CLIRMatrix's
method). A pair is ``en-<lang>-africlirmatrix``; the queries have no human translation (no oracle).

Queries and qrels come from the GitHub repository at a fixed commit (:class:`RemoteFile`, sha256
declared here, mirrored). The documents are ``africlirmatrix-v1.0-<language>/corpus.jsonl`` of the
Hugging Face dataset ``castorini/africlirmatrix`` at a fixed commit; the publisher gives no checksum we
could pin offline, so the sha256 of the copy downloaded is recorded in the collection's sources (and
so in every run's manifest). They are downloaded on first use where the machine is online (or by
`bench fetch`); offline, one line says what is missing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable, Iterator

from bench.data.collection.records import Doc, LazyDataset, Query, Records, lazy_dataset, register_dataset
from bench.data.collection.remote import (COPY_SHA256_FILE, ExternalCorpus, LazyDocs, Source, UrlFile, download_corpus,
                                          read_qrels, read_topics)
from bench.errors import BenchError
from bench.infra.downloads import fetch, RemoteFile

log = logging.getLogger(__name__)

REPO = "castorini/africlirmatrix"
COMMIT = "5b301c21efa1ba235fce448e1b8aedbe9b1ebd8e"
LICENSE = "Apache-2.0"
QRELS_PATH = "test/qrels/qrels.africlirmatrix-v1.0.en.{lang3}.txt"
TOPICS_PATH = "test/queries/topics.africlirmatrix-v1.0.en.{lang3}.tsv"
# AfriCLIRMatrix's language code -> sha256 of its qrels (QRELS_PATH), of its topics (TOPICS_PATH)
_QRELS_SHA256 = {
    "hau": "0552452e0887f03a41c9713e1233064d205ce1a2a7f7701259992ab4d3bb8ee3",
    "swa": "4e9699218cf1f9daf8c620ac436e26613b437f67fa45ac9079ce00f186751fa4",
    "yor": "a0f6b4593dbeccfff464ed98e3da1a8160ebd10f7991e068bff9f7a3bc9edec0",
}
_TOPICS_SHA256 = {
    "hau": "d46ea2c5db51da16ff18b13aa6b4cfa84f0d7cd2da1a83e10c079b8b6e637e13",
    "swa": "81dfa05a46efa53db8cec530779af38570a543b65bcc2b2fcd664046b82b7148",
    "yor": "3164b7603e2344d87d2984de5a3177b1104648cc02ebc9ec2abc1d0be802405e",
}
SHA256 = {  # path -> sha256 of every file the collections are built from
    **{QRELS_PATH.format(lang3=lang3): sha for lang3, sha in _QRELS_SHA256.items()},
    **{TOPICS_PATH.format(lang3=lang3): sha for lang3, sha in _TOPICS_SHA256.items()},
}
# bench's pair languages -> (AfriCLIRMatrix's file code, the Hugging Face folder's language name)
LANGUAGES = {"sw": ("swa", "swahili"), "ha": ("hau", "hausa"), "yo": ("yor", "yoruba")}
HF_REPO, HF_COMMIT = "castorini/africlirmatrix", "640a77e33ab4ceb4ae7da6e9cc3cc3016fbf36af"
CORPUS_FILE = "corpus.jsonl"
CORPUS_VERSION = 1
DATASETS = {lang: f"africlirmatrix/en-{lang}/test" for lang in LANGUAGES}


def remote(path: str) -> RemoteFile:
    return RemoteFile(REPO, COMMIT, path, SHA256[path], LICENSE)


def query_file(lang: str) -> RemoteFile:
    return remote(TOPICS_PATH.format(lang3=LANGUAGES[lang][0]))


def qrels_file(lang: str) -> RemoteFile:
    return remote(QRELS_PATH.format(lang3=LANGUAGES[lang][0]))


def corpus_remote(lang: str) -> UrlFile:
    name = LANGUAGES[lang][1]
    return UrlFile(f"the AfriCLIRMatrix {name.capitalize()} documents (Hugging Face {HF_REPO})",
                   f"https://huggingface.co/datasets/{HF_REPO}/resolve/{HF_COMMIT}/africlirmatrix-v1.0-{name}/"
                   f"{CORPUS_FILE}", None, None, LICENSE)


def pair_name(lang: str) -> str:
    return f"en-{lang}-africlirmatrix"


def _lang_of(dataset_id: str) -> str:
    (lang,) = [k for k, v in DATASETS.items() if v == dataset_id]
    return lang


def files_for(dataset_id: str) -> list[RemoteFile]:
    lang = _lang_of(dataset_id)
    return [query_file(lang), qrels_file(lang)]


def corpus_key(lang: str) -> dict:
    return {"artifact": "africlirmatrix-corpus", "version": CORPUS_VERSION, "url": corpus_remote(lang).url}


def corpus(lang: str) -> ExternalCorpus:
    """The documents of ``lang``: the Hugging Face file itself, kept as :data:`CORPUS_FILE`."""
    return ExternalCorpus(f"AfriCLIRMatrix {lang} documents", corpus_remote(lang), corpus_key(lang), CORPUS_FILE,
                          pair_name(lang))


def corpus_for(dataset_id: str) -> ExternalCorpus:
    return corpus(_lang_of(dataset_id))


def fetch_corpus(lang: str) -> Path:
    """The directory holding ``corpus.jsonl`` and its ``sha256`` (downloaded once)."""
    return download_corpus(corpus(lang))


# --- parsing --------------------------------------------------------------------------------------


def build_queries(topics: list[tuple[str, str]], qrels: dict[str, dict[str, int]]
                  ) -> tuple[list[Query], dict[str, dict[str, int]], dict[str, int]]:
    """The topics that have a relevant document (each id once), and their qrels."""
    queries, seen = [], set()
    notes = {"topics": len(topics), "repeated_ids": 0, "without_qrels": 0, "qrels_without_topic": 0}
    for qid, text in topics:
        if qid in seen:
            notes["repeated_ids"] += 1
            continue
        seen.add(qid)
        if any(rel > 0 for rel in qrels.get(qid, {}).values()):
            queries.append(Query(qid, text))
        else:
            notes["without_qrels"] += 1
    kept = {q.query_id for q in queries}
    notes["qrels_without_topic"] = sum(1 for qid in qrels if qid not in seen)
    return queries, {q: d for q, d in qrels.items() if q in kept}, notes


def corpus_records(lines: Iterable[str], source: str = "AfriCLIRMatrix corpus") -> Iterator[Doc]:
    """Docs from the corpus's JSON lines: an id (``docid``, ``id`` or ``_id``), ``text`` (or ``contents``)
    and an optional ``title``; a line that is not one is an error naming it."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchError(f"{source}:{n}: not JSON ({exc.msg})", "download the corpus again") from None
        doc_id = next((row[k] for k in ("docid", "id", "_id") if isinstance(row, dict) and k in row), None)
        text = next((row[k] for k in ("text", "contents") if isinstance(row, dict) and k in row), None)
        if doc_id is None or not isinstance(text, str):
            raise BenchError(f"{source}:{n}: expected an object with an id and a text", "download the corpus again")
        yield Doc(str(doc_id), str(row.get("title") or ""), text)


def read_corpus(lang: str) -> list[Doc]:
    path = fetch_corpus(lang) / CORPUS_FILE
    with open(path, encoding="utf-8") as f:
        return list(corpus_records(f, str(path)))


def load(lang: str) -> Records:
    qf, rf = query_file(lang), qrels_file(lang)
    topics, judged = read_topics(fetch(qf), "AfriCLIRMatrix"), read_qrels(fetch(rf), "AfriCLIRMatrix")
    queries, qrels, notes = build_queries(topics, judged)
    sources = {qf.path: qf.sha256, rf.path: rf.sha256}

    def docs() -> list[Doc]:
        read = read_corpus(lang)  # and the sha256 of the copy downloaded (there is no published one to pin)
        sources[corpus_remote(lang).url] = (corpus(lang).path.parent / COPY_SHA256_FILE).read_text().strip()
        return read

    log.info("AfriCLIRMatrix en-%s: %d queries (%s)", lang, len(queries),
             ", ".join(f"{k} {v}" for k, v in notes.items()))
    return Records(queries, LazyDocs(docs), qrels, sources, notes)


def register() -> None:
    for lang, dataset_id in DATASETS.items():
        if lazy_dataset(dataset_id) is None:
            register_dataset(dataset_id, LazyDataset(dataset_id, "en", lang, lambda lang=lang: load(lang)))


SOURCE = Source(tuple(DATASETS.values()), files_for, register, corpus_for)
