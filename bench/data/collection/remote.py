"""What a collection fetches, as data: the files on GitHub it is built from and, where there is one,
its corpus published outside GitHub.

Each module of bench's own collections declares itself with a :class:`Source` (its dataset ids, its files,
its corpus; :func:`bench.data.collection.source_of` finds it by dataset id). A corpus that lives outside
GitHub is an :class:`ExternalCorpus`: the file to download (:class:`UrlFile`: URL, size, and the hash the
publisher gives), how its records are packed in it (:class:`Packing`: the file itself, such as
AfriCLIRMatrix's documents on Hugging Face, or a pyserini prebuilt index storing CIRAL's passages raw)
and the artifact bench keeps them in, ``BENCH_HOME/corpora/<fingerprint>`` (:func:`corpus_dir`).
:func:`download` streams a file with a progress bar, verifies it and renames it into place only when it
is right; :func:`download_corpus` fetches a corpus packed as a plain file (one packed in an index is read
out by :mod:`bench.methods.retrieve.prebuilt`). The corpus is read on first use (:class:`LazyDocs`), so
the queries and qrels of such a collection load without it.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Iterator

from bench.data.collection.records import Doc
from bench.errors import BenchError
from bench.infra.store import artifact_dir, atomic_file, cached_build, is_complete
from bench.infra.downloads import DOWNLOAD_TIMEOUT_S, RemoteFile

log = logging.getLogger(__name__)

CORPORA = "corpora"  # the BENCH_HOME kind of the corpora built from these files
COPY_SHA256_FILE = "sha256"  # beside a corpus downloaded as a plain file: the sha256 of the copy


@dataclass(frozen=True)
class UrlFile:
    """A public file at a fixed URL: what it is, its size and the publisher's hash (``md5:...`` for
    pyserini's indexes; ``None`` where the publisher gives none: the sha256 seen is then recorded)."""

    what: str  # e.g. "pyserini's prebuilt index ciral-v1.0-sw (the CIRAL Swahili passages)"
    url: str
    digest: str | None
    size: int | None = None
    license: str = ""
    documents: int | None = None  # what the publisher says the corpus holds

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("?")[0]


class Packing(Enum):
    """How the records of an external corpus are packed in the file published."""

    FILE = "the file is the records (one JSON object a line)"
    LUCENE_INDEX = "a Lucene index archive storing each record raw (pyserini's prebuilt indexes, -storeRaw)"


@dataclass(frozen=True)
class ExternalCorpus:
    """A collection's corpus published outside GitHub, as its collection declares it: the file to download,
    how its records are packed in it, and where bench keeps them (the records as ``file`` in
    :func:`corpus_dir` of ``key``)."""

    name: str  # e.g. "CIRAL sw passages" (progress bars)
    remote: UrlFile
    key: dict  # what determines the records bench keeps: their artifact's key
    file: str  # the records, one JSON object a line, in the artifact
    pair_hint: str  # a pair that reads it (what `bench fetch --pair` is told in messages)
    packing: Packing = Packing.FILE

    @property
    def path(self) -> Path:
        return corpus_dir(self.key) / self.file

    def ready(self) -> bool:
        return corpus_ready(self.key)

    def missing(self) -> BenchError:
        return missing_corpus(self.remote, self.key, self.pair_hint)


@dataclass(frozen=True)
class Source:
    """What a module of bench's own collections declares about itself: the ir_datasets ids it registers
    (``register``), the files on GitHub a dataset is built from (``files``: mirrored, fetched by `bench
    fetch`) and, where its corpus is published outside GitHub, that corpus (``corpus``)."""

    datasets: tuple[str, ...]
    files: Callable[[str], list[RemoteFile]]  # dataset id -> its files
    register: Callable[[], None]  # registers the datasets with ir_datasets (idempotent)
    corpus: Callable[[str], ExternalCorpus] | None = None  # dataset id -> its corpus


def corpus_dir(key: dict) -> Path:
    return artifact_dir(CORPORA, key)


def corpus_ready(key: dict) -> bool:
    return is_complete(corpus_dir(key))


def missing_corpus(remote: UrlFile, key: dict, pair_hint: str) -> BenchError:
    """The one line saying which corpus is not here and how to get it."""
    return BenchError(f"{remote.what} is not here ({corpus_dir(key)})",
                      f"on a machine with internet, `bench fetch --pair {pair_hint}` downloads it from {remote.url}"
                      f"{f' ({remote.size / 1e9:.1f} GB)' if remote.size else ''}; copy BENCH_HOME/{CORPORA} to an "
                      "offline machine")


def download(remote: UrlFile, target: Path, pair_hint: str) -> str:
    """Stream ``remote`` into ``target`` (atomically), verify its hash; returns the sha256 of its bytes."""
    from bench.infra import progress

    algorithm, _, expected = (remote.digest or "").partition(":")
    log.info("downloading %s from %s", remote.what, remote.url)
    try:
        with urllib.request.urlopen(remote.url, timeout=DOWNLOAD_TIMEOUT_S) as stream, atomic_file(target) as tmp:
            total = int(stream.headers.get("Content-Length") or 0) or remote.size
            check = hashlib.new(algorithm) if algorithm else None
            sha = hashlib.sha256()
            with open(tmp, "wb") as out, progress.bar(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                              desc=f"downloading {remote.name}", mininterval=2.0) as bar:
                while chunk := stream.read(1 << 20):
                    out.write(chunk)
                    sha.update(chunk)
                    if check is not None:
                        check.update(chunk)
                    bar.update(len(chunk))
            if check is not None and check.hexdigest() != expected:
                raise BenchError(f"{algorithm} mismatch for {remote.url}: expected {expected}, got "
                                 f"{check.hexdigest()}; refused it", "download it again (a truncated or changed file)")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BenchError(f"{remote.what} is not here and cannot be downloaded from {remote.url}: {reason}",
                         f"on a machine with internet run `bench fetch --pair {pair_hint}`, then copy "
                         f"BENCH_HOME/{CORPORA} here") from exc
    return sha.hexdigest()


def download_corpus(corpus: ExternalCorpus) -> Path:
    """The directory of a corpus published as a plain file (:attr:`Packing.FILE`), downloaded once, with
    the sha256 of the copy beside it (:data:`COPY_SHA256_FILE`: the publisher gives none to pin)."""
    if corpus.packing is not Packing.FILE:
        raise ValueError(f"{corpus.name} is packed as {corpus.packing.name}, not as a plain file")

    def build(tmp: Path) -> None:
        digest = download(corpus.remote, tmp / corpus.file, corpus.pair_hint)
        (tmp / COPY_SHA256_FILE).write_text(digest + "\n")

    return cached_build(CORPORA, corpus.key, build)


class LazyDocs:
    """The documents of a collection, read by ``load`` on first use (iteration or ``len``): a collection
    whose corpus is not here still has its queries and qrels."""

    def __init__(self, load: Callable[[], list[Doc]]):
        self._load = load
        self._docs: list[Doc] | None = None

    def _loaded(self) -> list[Doc]:
        if self._docs is None:
            self._docs = self._load()
        return self._docs

    def __iter__(self) -> Iterator[Doc]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __getitem__(self, i):
        return self._loaded()[i]


def read_topics(path: Path, source: str) -> list[tuple[str, str]]:
    """(query id, text) per line of a ``qid<TAB>text`` topics file, in file order (repeats kept)."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        qid, sep, text = line.partition("\t")
        if not sep or not qid.strip() or not text.strip():
            raise BenchError(f"{path}:{n}: expected query_id<TAB>text", f"the {source} topics file changed upstream")
        out.append((qid.strip(), text.strip()))
    return out


def read_qrels(path: Path, source: str) -> dict[str, dict[str, int]]:
    """TREC qrels (``qid Q0 docid relevance``) of an upstream file."""
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        cols = line.split()
        if not cols:
            continue
        if len(cols) != 4 or not cols[3].lstrip("-").isdigit():
            raise BenchError(f"{path}:{n}: expected 'query_id Q0 doc_id relevance'",
                             f"the {source} qrels file changed upstream")
        qrels.setdefault(cols[0], {})[cols[2]] = int(cols[3])
    return qrels
