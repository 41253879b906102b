"""The pair registry: ``QQ-DD`` names one evaluation collection (queries in QQ, documents in DD)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.data.collection import Collection, corpus_of, source_of
from bench.infra.registry import Registry

DEFAULT_MEASURES = ("AP", "nDCG@10", "RR@10", "R@100", "R@1000")
CIRAL_MEASURES = ("nDCG@20", "R@100")  # CIRAL's official measures (pyserini's 2CR page reports these)


@dataclass(frozen=True)
class Pair:
    name: str
    query_lang: str
    doc_lang: str
    dataset_id: str
    description: str
    low_resource: bool = True
    offline: bool = False  # True when bench builds the collection from files it can mirror
    bitext: tuple[str, ...] = ()  # names of parallel corpora (see bench.data.bitext)
    measures: tuple[str, ...] = DEFAULT_MEASURES
    expected_queries: int | None = None
    expected_docs: int | None = None
    tuning: bool = False  # a tuning collection: never reported as a result
    files: dict = field(default_factory=dict, compare=False)  # pair files: resolved local paths

    @property
    def foreign_lang(self) -> str:
        return self.query_lang if self.doc_lang == "en" else self.doc_lang

    def collection(self) -> Collection:
        return Collection(self.dataset_id)

    def is_available(self) -> bool:
        """True when every input is cached or mirrored, without touching the network."""
        if self.files:
            return all(p.exists() for p in self.files.values())
        from bench.infra.downloads import is_available

        if corpus_of(self.dataset_id) is not None:  # its files mirrored, its corpus downloaded once
            return corpus_ready(self) and all(is_available(rf) for rf in remote_files(self))
        if not self.offline:
            return False
        return all(is_available(rf) for rf in remote_files(self))


PAIRS: Registry[Pair] = Registry("pair")


def _afriqa(lang: str, split: str, queries: int | None, bitext: tuple[str, ...], tuning=False) -> Pair:
    name = f"{lang}-en" if split == "test" else f"{lang}-en-{split}"
    return Pair(
        name, lang, "en", f"afriqa/{lang}-en/{split}",
        f"AfriQA {split}: {lang} questions over English Wikipedia gold passages",
        offline=True, bitext=bitext, expected_queries=queries, expected_docs=5414, tuning=tuning,
    )


for _pair in (
    _afriqa("sw", "test", 294, ("lafand-en-swa", "tico19-en-sw", "ntrex-swa", "tatoeba-swh")),
    _afriqa("ha", "test", 300, ("lafand-en-hau", "tico19-en-ha", "ntrex-hau")),
    _afriqa("yo", "test", 254, ("lafand-en-yor", "ntrex-yor")),
    _afriqa("ha", "dev", None, ("lafand-en-hau", "tico19-en-ha", "ntrex-hau"), tuning=True),
    _afriqa("yo", "train", None, ("lafand-en-yor", "ntrex-yor"), tuning=True),
):
    PAIRS.register(_pair.name, _pair)

# The seed study's CLIRMatrix pairs: English queries over bi139-base test1 (downloaded by ir_datasets).
_CLIRMATRIX_LOW_RESOURCE = {"sw": True, "yo": True, "tl": True, "mr": True, "fi": False, "de": False, "fr": False}
for _lang, _low in _CLIRMATRIX_LOW_RESOURCE.items():
    PAIRS.register(
        f"en-{_lang}",
        Pair(f"en-{_lang}", "en", _lang, f"clirmatrix/{_lang}/bi139-base/en/test1",
             f"CLIRMatrix bi139-base test1: English queries over {_lang} Wikipedia", low_resource=_low),
    )
# CIRAL: English queries over African-language news passages (test-b reported; test-a too)
_BITEXT = {"sw": ("lafand-en-swa", "tico19-en-sw", "ntrex-swa", "tatoeba-swh"),
           "ha": ("lafand-en-hau", "tico19-en-ha", "ntrex-hau"), "yo": ("lafand-en-yor", "ntrex-yor")}
_CIRAL_COUNTS = {("sw", "test-b"): (112, 949013), ("ha", "test-b"): (312, 715355), ("yo", "test-b"): (554, 82095),
                 ("sw", "test-a"): (85, 949013), ("ha", "test-a"): (80, 715355), ("yo", "test-a"): (100, 82095)}
for (_lang, _split), (_queries, _docs) in _CIRAL_COUNTS.items():
    _name = f"en-{_lang}-ciral" + ("" if _split == "test-b" else f"-{_split}")
    PAIRS.register(_name, Pair(
        _name, "en", _lang, f"ciral/en-{_lang}/{_split}",
        f"CIRAL v1.0 {_split}: English queries over {_lang} news passages (human translations: the native topics)",
        bitext=_BITEXT[_lang], measures=CIRAL_MEASURES, expected_queries=_queries, expected_docs=_docs))
# AfriCLIRMatrix: English Wikipedia titles over African-language Wikipedia (documents from Hugging Face)
for _lang, _queries in (("sw", 1500), ("ha", 1500), ("yo", 1000)):
    PAIRS.register(f"en-{_lang}-africlirmatrix", Pair(
        f"en-{_lang}-africlirmatrix", "en", _lang, f"africlirmatrix/en-{_lang}/test",
        f"AfriCLIRMatrix v1.0 test: English Wikipedia titles over {_lang} Wikipedia articles",
        bitext=_BITEXT[_lang], expected_queries=_queries))
PAIRS.register(
    "en-sw-wikiclir",
    Pair("en-sw-wikiclir", "en", "sw", "wikiclir/sw", "WikiCLIR: English queries over Swahili Wikipedia"),
)


def get_pair(name: str) -> Pair:
    return PAIRS.get(name)


def all_pairs() -> list[Pair]:
    return [PAIRS.get(n) for n in PAIRS]


def remote_files(pair: Pair) -> list:
    """Every public file the pair needs: its collection's (unless ir_datasets downloads it), its
    bitext, and the FLORES-200 devtest of its foreign language (to evaluate translation only)."""
    from bench.data.bitext import sources

    source = source_of(pair.dataset_id)
    files = list(source.files(pair.dataset_id)) if source is not None else []
    files += sources.remote_files(pair.bitext)
    if pair.bitext:
        files += sources.remote_files([sources.flores_devtest(pair.foreign_lang)])
    return list(dict.fromkeys(files))


def corpus_ready(pair: Pair) -> bool:
    """For a collection whose corpus is downloaded from outside GitHub (CIRAL, AfriCLIRMatrix): is it here?"""
    corpus = corpus_of(pair.dataset_id)
    return corpus is None or corpus.ready()
