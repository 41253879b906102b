"""FLORES-200 devtest evaluation of foreign→English translation: sacrebleu chrF and BLEU.

FLORES-200 devtest is declared in :mod:`bench.data.bitext.sources` as evaluation-only (it is never
training data); it is read through the store (verified copy, cache or mirror). Translations go through
:func:`bench.methods.translate.nmt.translate`, so they are cached, and the scores are cached too, under
``BENCH_HOME/mt-eval/<fingerprint>`` (model fingerprint, language, decoding parameters).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from bench.infra.store import artifact_dir, cached_build, is_complete
from bench.methods.translate import nmt

log = logging.getLogger(__name__)

EVAL_VERSION = 1


def devtest(lang: str) -> list[tuple[str, str]]:
    """FLORES-200 devtest (foreign, english) sentence pairs for ``lang`` (sw, ha, yo)."""
    from bench.data.bitext.sources import flores_devtest, read_eval_corpus

    return [(f.strip(), e.strip()) for f, e in read_eval_corpus(flores_devtest(lang))]


def score(hypotheses: list[str], references: list[str]) -> dict:
    """Corpus chrF (chrF2, character 6-grams) and BLEU (13a tokenisation), with sacrebleu signatures."""
    import sacrebleu

    chrf = sacrebleu.metrics.CHRF()
    bleu = sacrebleu.metrics.BLEU()
    c, b = chrf.corpus_score(hypotheses, [references]), bleu.corpus_score(hypotheses, [references])
    return {"chrF": round(c.score, 2), "BLEU": round(b.score, 2), "sentences": len(hypotheses),
            "chrF_signature": str(chrf.get_signature()), "BLEU_signature": str(bleu.get_signature())}


def _key(ref: nmt.MtModel, lang: str, params: nmt.DecodeParams, limit: int | None) -> dict:
    return {"artifact": "mt-eval", "version": EVAL_VERSION, "set": "flores200-devtest", "model": ref.fingerprint,
            "lang": lang, "direction": f"{lang}-en", "params": asdict(params), "limit": limit}


def devtest_scores(model, lang: str, params: nmt.DecodeParams = nmt.DecodeParams(),
                   limit: int | None = None) -> dict:
    """chrF and BLEU of ``model`` on FLORES-200 devtest ``lang``→English (cached)."""
    ref = model if isinstance(model, nmt.MtModel) else nmt.resolve(model)

    def build(tmp: Path) -> None:
        pairs = devtest(lang)[:limit]
        hyps = nmt.translate([f for f, _ in pairs], ref, lang, "en", params)
        result = {"model": ref.describe(), "set": f"FLORES-200 devtest {lang}→en",
                  **score(hyps, [e for _, e in pairs])}
        log.info("FLORES-200 devtest %s→en: chrF %.1f, BLEU %.1f (%d sentences)", lang, result["chrF"],
                 result["BLEU"], result["sentences"])
        (tmp / "scores.json").write_text(json.dumps(result, indent=1))
        (tmp / "translations.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")

    path = cached_build("mt-eval", _key(ref, lang, params, limit), build)
    return json.loads((path / "scores.json").read_text())


def cached_scores(ref: nmt.MtModel, lang: str, params: nmt.DecodeParams = nmt.DecodeParams()) -> dict | None:
    """The full-devtest scores if they were already computed (no translation), else None."""
    path = artifact_dir("mt-eval", _key(ref, lang, params, None))
    return json.loads((path / "scores.json").read_text()) if is_complete(path) else None


def provenance(ref: nmt.MtModel, source_lang: str, target_lang: str, decode: dict) -> dict:
    """What a run manifest records of a translation model: its identity, decoding, how bench trained it
    (``bench-mt.json``, where it did) and its cached FLORES-200 devtest scores (into English only)."""
    from bench.errors import BenchError

    info = {**ref.describe(), "decode": decode}
    meta = ref.path / "bench-mt.json"
    if meta.exists():
        trained = json.loads(meta.read_text())
        info["trained"] = {k: trained.get(k) for k in ("steps", "epochs", "train_minutes", "peak_rss_mb", "threads")}
        info["trained"]["heldout_chrF"] = (trained.get("final") or {}).get("dev_chrf")
    if target_lang == "en":
        try:
            scores = cached_scores(ref, source_lang, nmt.DecodeParams(**decode))
        except BenchError:
            scores = None
        if scores:
            info["flores200_devtest"] = {k: scores[k] for k in ("chrF", "BLEU", "sentences")}
    return info
