"""Where the largest losses went wrong: for each query on which the best system lost most against the baseline,
the first relevant document in the best system's ranking beside the documents it ranked above it.

A report reads runs only: the rankings are those of the stored runs' ``run.trec`` (in the one order of
:func:`bench.results.order.ranked`); the judgments and the documents' titles and texts come from a
:data:`DocumentsLoader` the caller passes (``bench report`` and ``bench run`` build one from the pair:
:mod:`bench.experiment.documents`). Without one, or when it has nothing for the runs, a report has no such
section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection, Mapping, Protocol

from bench.results.order import ranked
from bench.results.runs import RUN_FILE, StoredRun, read_trec

SHOWN = 3  # the documents shown above the first relevant one (the top ones; the top 3 when none was retrieved)
SNIPPET_CHARS = 200  # a passage: the start of the document's text, cut at a word


class PairDocuments(Protocol):
    """What a report reads of its pair's collection: the judgments, and the title and text of a few documents."""

    @property
    def qrels(self) -> Mapping[str, Mapping[str, int]]: ...

    def texts(self, doc_ids: Collection[str]) -> Mapping[str, tuple[str, str]]:
        """doc id -> (title, text) of those of ``doc_ids`` the collection holds."""
        ...


# the documents of a pair's runs: (pair, the runs read) -> its documents, or None where none can be given for them
DocumentsLoader = Callable[[str, list[StoredRun]], "PairDocuments | None"]


@dataclass(frozen=True)
class Passage:
    """A document of a loss: its ranks (None: not retrieved), its judgment (None: unjudged) and its start."""

    doc_id: str
    rank: int | None  # in the best system's run
    baseline_rank: int | None  # in the baseline's run
    relevance: int | None
    title: str
    snippet: str

    @property
    def relevant(self) -> bool:
        return self.relevance is not None and self.relevance > 0


@dataclass(frozen=True)
class Loss:
    """One query the best system lost on: the first relevant document in its ranking (where it retrieved none,
    the first in the baseline's; None when neither did) and the documents it ranked above that one (up to
    :data:`SHOWN`, from its top; its top :data:`SHOWN` when it retrieved no relevant document)."""

    query_id: str
    delta: float  # best − baseline on the primary measure
    n_relevant: int  # the documents judged relevant for the query
    relevant: Passage | None
    above: tuple[Passage, ...]

    @property
    def retrieved(self) -> bool:
        """The best system retrieved a relevant document."""
        return self.relevant is not None and self.relevant.rank is not None


@dataclass(frozen=True)
class Losses:
    """The largest losses of ``system`` against ``baseline``, read from the runs ``system_run`` and
    ``baseline_run`` (their directories' names), largest first."""

    system: str
    baseline: str
    system_run: str
    baseline_run: str
    cases: tuple[Loss, ...]


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of ``text`` (whitespace made single spaces) up to ``limit`` characters, cut at a word and ended
    with ``…`` when cut (a first word longer than ``limit`` is cut inside)."""
    words = " ".join(str(text).split())
    if len(words) <= limit:
        return words
    head = words[:limit + 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else words[:limit]
    return cut.rstrip(" ,;:") + "…"


def rankings(run: StoredRun) -> dict[str, list[str]]:
    """Query id -> the run's documents, best first, as its ``run.trec`` ranks them."""
    return {qid: [doc for doc, _ in ranked(docs)] for qid, docs in read_trec(run.path / RUN_FILE).items()}


def loss_passages(system_run: StoredRun, baseline_run: StoredRun, losses: Mapping[str, float],
                  documents: DocumentsLoader) -> Losses | None:
    """The passages of ``losses`` (query id -> best − baseline, largest loss first) from the two runs' rankings
    and the judgments and texts ``documents`` gives for them; None when there is no loss or it gives nothing."""
    if not losses:
        return None
    docs = documents(system_run.pair, [system_run, baseline_run])
    if docs is None:
        return None
    best, base = rankings(system_run), rankings(baseline_run)
    picked = []  # (query id, relevant doc id or None, doc ids above it)
    for qid in losses:
        relevant = {d for d, r in docs.qrels.get(qid, {}).items() if r > 0}
        order = best.get(qid, [])
        first = next((i for i, d in enumerate(order) if d in relevant), None)
        if first is not None:
            picked.append((qid, order[first], order[:min(first, SHOWN)]))
        else:
            picked.append((qid, next((d for d in base.get(qid, []) if d in relevant), None), order[:SHOWN]))
    texts = docs.texts({d for _, rel, above in picked for d in [*above, *([rel] if rel else [])]})
    cases = []
    for qid, rel, above in picked:
        judged = docs.qrels.get(qid, {})
        where = ({d: i for i, d in enumerate(best.get(qid, []), 1)}, {d: i for i, d in enumerate(base.get(qid, []), 1)})
        cases.append(Loss(qid, losses[qid], sum(1 for r in judged.values() if r > 0),
                          _passage(rel, where, judged, texts) if rel else None,
                          tuple(_passage(d, where, judged, texts) for d in above)))
    return Losses(system_run.system, baseline_run.system, system_run.name, baseline_run.name, tuple(cases))


def _passage(doc_id: str, where: tuple[Mapping[str, int], Mapping[str, int]], judged: Mapping[str, int],
             texts: Mapping[str, tuple[str, str]]) -> Passage:
    """``doc_id`` with its ranks in the best system's and the baseline's run (``where``), its judgment and the
    start of its text."""
    title, text = texts.get(doc_id, ("", ""))
    return Passage(doc_id, where[0].get(doc_id), where[1].get(doc_id), judged.get(doc_id), str(title or ""),
                   snippet(text or ""))
