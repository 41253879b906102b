"""Corpora read out of pyserini's prebuilt Lucene indexes, and the one entry point that fetches a pair's
corpus from outside GitHub (`bench fetch`, `bench run`).

CIRAL's passages are published inside its prebuilt indexes (``ciral-v1.0-<lang>``, indexed with
``-storeRaw``): :func:`ciral_passages` downloads the index (md5-verified), reads the stored ``raw`` field
of every document with Lucene and writes the records, one JSON object a line, where
:mod:`bench.data.collection.ciral` reads them; the index itself is not kept (bench builds its own).
"""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
from pathlib import Path
from typing import Iterator

from bench.data.collection import africlirmatrix, ciral
from bench.data.collection.remote import CORPORA, corpus_ready, download
from bench.methods.retrieve.lucene import ensure_jvm
from bench.infra.store import cached_build

log = logging.getLogger(__name__)


def stored_raw(index_dir: Path) -> Iterator[str]:
    """The stored ``raw`` field of every live document of a Lucene index, in index order."""
    ensure_jvm()
    from jnius import autoclass
    from pyserini.index.lucene import LuceneIndexReader

    reader = LuceneIndexReader(str(index_dir)).reader
    live = autoclass("org.apache.lucene.index.MultiBits").getLiveDocs(reader)
    stored = reader.storedFields()
    for i in range(reader.maxDoc()):
        if live is None or live.get(i):
            yield stored.document(i).get("raw")


def _index_dir(root: Path) -> Path:
    """The directory holding the Lucene files in an unpacked index archive."""
    found = sorted({p.parent for p in root.rglob("segments_*")})
    if len(found) != 1:
        raise RuntimeError(f"expected one Lucene index in {root}, found {len(found)}")
    return found[0]


def ciral_passages(lang: str) -> Path:
    """The passages file of CIRAL ``lang`` (built once from pyserini's prebuilt index)."""
    index = ciral.INDEXES[lang]
    pair = ciral.pair_name(lang, ciral.SPLITS[0])

    def build(tmp: Path) -> None:
        from tqdm import tqdm

        archive = tmp / index.name
        download(index, archive, pair)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp / "index", filter="data")
        archive.unlink()
        count = 0
        with open(tmp / ciral.PASSAGES_FILE, "w", encoding="utf-8") as out:
            records = tqdm(stored_raw(_index_dir(tmp / "index")), total=index.documents, unit="passage",
                           desc=f"reading CIRAL {lang} passages", mininterval=2.0)
            for record in records:
                out.write(json.dumps(json.loads(record), ensure_ascii=False) + "\n")
                count += 1
        shutil.rmtree(tmp / "index")
        if index.documents is not None and count != index.documents:
            raise RuntimeError(f"{index.url} holds {count} documents, pyserini says {index.documents}")

    return cached_build(CORPORA, ciral.passages_key(lang), build) / ciral.PASSAGES_FILE


def fetch_corpus(dataset_id: str) -> list[str]:
    """Make sure the corpus of ``dataset_id`` is here when it comes from outside GitHub (downloading it
    where the machine is online; offline, one clear error); a line per corpus fetched."""
    if dataset_id.startswith("ciral/"):
        lang = next(k for k, v in ciral.DATASETS.items() if v == dataset_id)[0]
        if corpus_ready(ciral.passages_key(lang)):
            return []
        return [f"{ciral.INDEXES[lang].what}: {ciral_passages(lang)}"]
    if dataset_id.startswith("africlirmatrix/"):
        lang = next(k for k, v in africlirmatrix.DATASETS.items() if v == dataset_id)
        if corpus_ready(africlirmatrix.corpus_key(lang)):
            return []
        return [f"{africlirmatrix.corpus_remote(lang).what}: {africlirmatrix.fetch_corpus(lang)}"]
    return []
