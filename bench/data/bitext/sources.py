"""The parallel corpora bench may train on, declared as data (pinned files + a reader).

Each :class:`Corpus` names its files (:class:`~bench.infra.downloads.RemoteFile`: repository, commit, path,
sha256, licence) and a reader that yields raw ``(foreign, english)`` pairs from the verified local
copies. Which side is which is fixed here, once, per format:

- LAFAND-MT (masakhane-io/lafand-mt): line-aligned ``train.en`` / ``train.<lang3>`` (train split only:
  its dev and test splits are MT evaluation sets);
- TICO-19 (tico-19/tico-19.github.io): a zipped TMX; each ``<tu>`` holds one ``<tuv xml:lang=..>`` per
  language, matched by language code, never by position;
- NTREX-128 (MicrosoftTranslator/NTREX): line-aligned ``newstest2019-src.eng.txt`` and
  ``newstest2019-ref.<lang3>.txt``;
- Tatoeba (facebookresearch/LASER): line-aligned ``tatoeba.swh-eng.{swh,eng}``.

FLORES-200 devtest is declared too, for evaluating translation, but marked ``eval_only``:
:func:`read_corpus` refuses it for training (a hard error), and only :func:`read_eval_corpus` reads it.
"""

from __future__ import annotations

import logging
import zipfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from bench.errors import BenchError
from bench.infra.registry import Registry
from bench.infra.downloads import fetch, RemoteFile

log = logging.getLogger(__name__)

RawPair = tuple[str, str]  # (foreign, english), as read
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True)
class Corpus:
    name: str
    lang: str  # ISO 639-1 code of the foreign side (sw, ha, yo)
    files: tuple[RemoteFile, ...]
    reader: Callable[[list[Path]], Iterator[RawPair]]
    description: str
    eval_only: bool = False  # an evaluation set: never training data

    @property
    def license(self) -> str:
        return self.files[0].license

    def source_key(self) -> dict[str, str]:
        """What determines the corpus's content (for fingerprints): path -> sha256."""
        return {f.mirror_path: f.sha256 for f in self.files}


CORPORA: Registry[Corpus] = Registry("parallel corpus")


# --- readers ------------------------------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    # newline="\n": split on line feeds only, so a stray U+2028 or \r inside a line keeps files aligned
    with open(path, encoding="utf-8", newline="\n") as f:
        return [line.rstrip("\r\n") for line in f]


def read_line_aligned(paths: list[Path]) -> Iterator[RawPair]:
    """``paths = [foreign file, english file]``, one sentence a line, same number of lines."""
    foreign_path, english_path = paths
    foreign, english = _read_lines(foreign_path), _read_lines(english_path)
    if len(foreign) != len(english):
        raise BenchError(
            f"{foreign_path.name} has {len(foreign)} lines but {english_path.name} has {len(english)}",
            "line-aligned bitext files must have as many lines: replace the corrupt copy",
        )
    return iter(zip(foreign, english))


def tmx_reader(foreign_code: str, english_code: str = "en") -> Callable[[list[Path]], Iterator[RawPair]]:
    """A reader of a zipped TMX (one .tmx inside) that takes each side by its ``xml:lang``."""

    def read(paths: list[Path]) -> Iterator[RawPair]:
        (path,) = paths
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.endswith(".tmx")]
            if len(members) != 1:
                raise BenchError(f"{path.name} should hold one .tmx file, not {members}", "replace the corrupt copy")
            with archive.open(members[0]) as stream:
                for _, element in ET.iterparse(stream):
                    if element.tag != "tu":
                        continue
                    segs = {
                        (tuv.get(XML_LANG) or tuv.get("lang") or "").lower(): "".join(tuv.find("seg").itertext())
                        for tuv in element.findall("tuv")
                        if tuv.find("seg") is not None
                    }
                    element.clear()
                    if foreign_code in segs and english_code in segs:
                        yield segs[foreign_code], segs[english_code]

    return read


# --- declarations -------------------------------------------------------------------------------

LAFAND = ("masakhane-io/lafand-mt", "d441f8b063d63e95eafb72e84317359e27abf95e", "CC-BY-NC-4.0")
TICO = ("tico-19/tico-19.github.io", "d97615f9cffa28ec7de571e00fbd513e5a1c7fc7", "CC0-1.0")
NTREX = ("MicrosoftTranslator/NTREX", "8561f6a622db9edad1217683e5c83daefd8bb2bf", "CC-BY-SA-4.0")
LASER = ("facebookresearch/LASER", "74bc6ae7ffb7cba670fe0f428d0ede9f666fb821", "CC-BY-2.0-FR")
FLORES = ("Helsinki-NLP/OPUS-MT-testsets", "ac0f19c0be3cb4e0d9450fcb2d7a9847c4bdd180", "CC-BY-SA-4.0")
FLORES_DIR = "datasets/facebook/flores/flores200_dataset/devtest"

SHA256 = {
    "data/text_files/en-swa/train.en": "bc6c6f0099aea15ad3a3ffa90d510815d55a004cf1a5c5ebdaba725b3fc52ff1",
    "data/text_files/en-swa/train.swa": "561e4e04014ad64ff6f1878cbcb461b08ad0b1128e4813d554ac0c9830409e67",
    "data/text_files/en-hau/train.en": "1ba52ed24a0292a6a81dfc4ccc7fb409762981eb6b42d75ff0808c5b6a726bc1",
    "data/text_files/en-hau/train.hau": "6749e5c27ba5685af793284e0c18571a3f75e3c25d0b3746ee4497527520683d",
    "data/text_files/en-yor/train.en": "2f0f1a4fbc85a1c8c0eecfd53b251ea017dc3563fd4163a6122280141d1d51d7",
    "data/text_files/en-yor/train.yor": "ba3ec6900bdc4c22536649470f4b8a6d968b8907ba264b14c9dbbb749dd42c98",
    "data/TM/all.en-sw.tmx.zip": "665d685b739044f805d254494f6da8f93761f71767b5f63582f8b5792c6c8a06",
    "data/TM/all.en-ha.tmx.zip": "b7f3f33ceb54edacd162b908a5f7c1463bb2be3ef7348cd2396084b25d7c897d",
    "NTREX-128/newstest2019-src.eng.txt": "389e8f5796c66db4f646dfad33e1ec622d74767af5ef112b42a1f2cd814df3cc",
    "NTREX-128/newstest2019-ref.swa.txt": "076cec7296ec0d458d4762ddcffcd1d79ce2e7d8ee641467977d0b9f4ec95e8d",
    "NTREX-128/newstest2019-ref.hau.txt": "e6665dd99bf833d328928cf8a5522613833dc64c4df78851071faa1bad736b36",
    "NTREX-128/newstest2019-ref.yor.txt": "949526fa834746b6bf85e5014ccaae993b94d4d9ac1452350eb715e30ecd62f2",
    "data/tatoeba/v1/tatoeba.swh-eng.swh": "1c672915446c336cc378676e6dbf91eb54d27bbfd0c61563d349265bc6374753",
    "data/tatoeba/v1/tatoeba.swh-eng.eng": "e8539647caff9e329776ae863b6224d432923c6e4e9256b9df92ca58ff282eac",
    f"{FLORES_DIR}/eng_Latn.devtest": "612e9fbe87997617c0fa8fa8929654a4f49b728d96738112c2b86ef6a1d78d88",
    f"{FLORES_DIR}/swh_Latn.devtest": "834ce9e5f48893505f9d69dec24da2545be4323e841fb23440e36c62c5d61ee4",
    f"{FLORES_DIR}/hau_Latn.devtest": "d047330256018958063d18a5efede921f3076a181f3e3e0c793c2adbf71cd7a9",
    f"{FLORES_DIR}/yor_Latn.devtest": "48253a240a934a137e7e7b0e6e679593bd22232e9f6c3e294c88f860fe42be34",
}


def _remote(source: tuple[str, str, str], path: str) -> RemoteFile:
    repo, commit, license_ = source
    return RemoteFile(repo, commit, path, SHA256[path], license_)


def _declare(corpus: Corpus) -> None:
    CORPORA.register(corpus.name, corpus)


_LANG3 = {"sw": "swa", "ha": "hau", "yo": "yor"}
_LAFAND_SIZES = {"sw": "30,782", "ha": "3,098", "yo": "6,644"}
for _lang, _lang3 in _LANG3.items():
    _declare(Corpus(
        f"lafand-en-{_lang3}", _lang,
        (_remote(LAFAND, f"data/text_files/en-{_lang3}/train.{_lang3}"),
         _remote(LAFAND, f"data/text_files/en-{_lang3}/train.en")),
        read_line_aligned, f"LAFAND-MT news en-{_lang3} train ({_LAFAND_SIZES[_lang]} lines)",
    ))
    _declare(Corpus(
        f"ntrex-{_lang3}", _lang,
        (_remote(NTREX, f"NTREX-128/newstest2019-ref.{_lang3}.txt"),
         _remote(NTREX, "NTREX-128/newstest2019-src.eng.txt")),
        read_line_aligned, f"NTREX-128 news, eng source and {_lang3} reference (1,997 lines)",
    ))
for _lang in ("sw", "ha"):
    _declare(Corpus(
        f"tico19-en-{_lang}", _lang, (_remote(TICO, f"data/TM/all.en-{_lang}.tmx.zip"),),
        tmx_reader(_lang), f"TICO-19 COVID-19 translation memory en-{_lang} (3,071 units)",
    ))
_declare(Corpus(
    "tatoeba-swh", "sw",
    (_remote(LASER, "data/tatoeba/v1/tatoeba.swh-eng.swh"), _remote(LASER, "data/tatoeba/v1/tatoeba.swh-eng.eng")),
    read_line_aligned, "Tatoeba swh-eng sentence pairs from the LASER test set (390 lines)",
))
for _lang, _flores in (("sw", "swh"), ("ha", "hau"), ("yo", "yor")):
    _declare(Corpus(
        f"flores200-devtest-{_flores}", _lang,
        (_remote(FLORES, f"{FLORES_DIR}/{_flores}_Latn.devtest"), _remote(FLORES, f"{FLORES_DIR}/eng_Latn.devtest")),
        read_line_aligned, f"FLORES-200 devtest {_flores}-eng (1,012 lines): evaluation only", eval_only=True,
    ))


# --- access -------------------------------------------------------------------------------------


def get_corpus(name: str) -> Corpus:
    return CORPORA.get(name)


def training_corpus(name: str) -> Corpus:
    """The corpus ``name``, refusing an evaluation-only one (FLORES-200 devtest)."""
    corpus = CORPORA.get(name)
    if corpus.eval_only:
        raise BenchError(
            f"{name} is an evaluation set and must never be used as training bitext",
            "remove it from the pair's bitext; it may only be read with read_eval_corpus() to evaluate translation",
        )
    return corpus


def read_corpus(name: str) -> list[RawPair]:
    """The raw (foreign, english) pairs of a training corpus, from verified local copies."""
    corpus = training_corpus(name)
    return list(corpus.reader([fetch(f) for f in corpus.files]))


def read_eval_corpus(name: str) -> list[RawPair]:
    """The raw (foreign, english) pairs of an evaluation-only corpus (to score translation, never to train)."""
    corpus = CORPORA.get(name)
    if not corpus.eval_only:
        raise BenchError(f"{name} is training bitext, not an evaluation set", "use read_corpus() for it")
    return list(corpus.reader([fetch(f) for f in corpus.files]))


def flores_devtest(lang: str) -> str:
    """The name of the FLORES-200 devtest corpus for a pair language (sw, ha, yo)."""
    for name in CORPORA:
        corpus = CORPORA.get(name)
        if corpus.eval_only and corpus.lang == lang:
            return name
    raise BenchError(f"no FLORES-200 devtest is declared for {lang!r}", "declared: sw, ha, yo")


def remote_files(names) -> list[RemoteFile]:
    """Every file of the named corpora (for `bench fetch` / mirrors)."""
    return [f for name in names for f in CORPORA.get(name).files]
