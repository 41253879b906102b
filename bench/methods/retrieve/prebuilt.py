"""Corpora read out of pyserini's prebuilt Lucene indexes, and the one entry point that fetches a pair's
corpus from outside GitHub (`bench fetch`, `bench run`).

A collection declares its external corpus as data (:class:`bench.data.collection.remote.ExternalCorpus`,
found by dataset id with :func:`bench.data.collection.corpus_of`): the file, and how its records are
packed in it. :func:`fetch_corpus` fetches what is declared: a plain file is downloaded by
:func:`bench.data.collection.remote.download_corpus`; a Lucene index (CIRAL's passages are published
inside its prebuilt indexes ``ciral-v1.0-<lang>``, indexed with ``-storeRaw``) is read here, which needs
pyserini: :func:`index_records` downloads the index (md5-verified), reads the stored ``raw`` field of
every document with Lucene and writes the records, one JSON object a line, where the collection reads
them; the index itself is not kept (bench builds its own).
"""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
from pathlib import Path
from typing import Iterator

from bench.data.collection import corpus_of
from bench.data.collection.remote import CORPORA, ExternalCorpus, Packing, download, download_corpus
from bench.infra.store import cached_build
from bench.methods.retrieve.lucene import ensure_jvm

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


def index_records(corpus: ExternalCorpus) -> Path:
    """The records file of a corpus packed as a Lucene index (built once from the index: its stored raw
    records, one JSON object a line)."""
    if corpus.packing is not Packing.LUCENE_INDEX:
        raise ValueError(f"{corpus.name} is packed as {corpus.packing.name}, not as a Lucene index")
    index = corpus.remote

    def build(tmp: Path) -> None:
        from bench.infra import progress

        archive = tmp / index.name
        download(index, archive, corpus.pair_hint)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp / "index", filter="data")
        archive.unlink()
        count = 0
        with open(tmp / corpus.file, "w", encoding="utf-8") as out:
            records = progress.bar(stored_raw(_index_dir(tmp / "index")), total=index.documents, unit="passage",
                           desc=f"reading {corpus.name}", mininterval=2.0)
            for record in records:
                out.write(json.dumps(json.loads(record), ensure_ascii=False) + "\n")
                count += 1
        shutil.rmtree(tmp / "index")
        if index.documents is not None and count != index.documents:
            raise RuntimeError(f"{index.url} holds {count} documents, pyserini says {index.documents}")

    return cached_build(CORPORA, corpus.key, build) / corpus.file


def fetch_corpus(dataset_id: str) -> list[str]:
    """Make sure the corpus of ``dataset_id`` is here when it comes from outside GitHub (downloading it
    where the machine is online; offline, one clear error); a line per corpus fetched."""
    corpus = corpus_of(dataset_id)
    if corpus is None or corpus.ready():
        return []
    fetched = index_records(corpus) if corpus.packing is Packing.LUCENE_INDEX else download_corpus(corpus)
    return [f"{corpus.remote.what}: {fetched}"]
