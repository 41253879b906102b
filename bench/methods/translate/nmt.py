"""Query translation with any Hugging Face seq2seq model (Marian, NLLB, M2M100, bench's own).

A model spec is a local model directory or a Hugging Face id (reachable hub or local HF cache, see
:mod:`bench.data.models`). Texts are translated in length-sorted batches by beam search; the output keeps
the input order. Multilingual models get their language codes: the tokenizer's ``src_lang`` and the
target language forced as the first generated token (NLLB ``swh_Latn``/``eng_Latn``, M2M100
``__sw__``/``__en__``). A model directory with a ``target_tokenizer/`` subdirectory decodes with that
tokenizer. bench's own models (``bench train mt``, :mod:`bench.methods.translate.mt_model`) are recognised by
their ``bench-mt-model.json`` and decoded by their own copy-aware beam search.

Translations are cached under ``BENCH_HOME/translations/<fingerprint>`` keyed by the model's
fingerprint, the texts, the languages and the decoding parameters, so a repeated run loads no model.
Decoding runs on :func:`bench.infra.devices.resolve`'s device (``--device``), in fp32 on every device (beam
search is where a lower precision would change a translation, and the cache is not keyed by device).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from bench.infra import batching, devices

from bench.data import models
from bench.errors import BenchError
from bench.infra.rates import timed
from bench.infra.store import cached_build, fingerprint
from bench.methods.translate import mt_model

log = logging.getLogger(__name__)

TRANSLATE_VERSION = 1  # bump when the way texts are translated changes
NLLB_CODES = {"sw": "swh_Latn", "ha": "hau_Latn", "yo": "yor_Latn", "en": "eng_Latn", "fi": "fin_Latn",
              "de": "deu_Latn", "fr": "fra_Latn", "tl": "tgl_Latn", "mr": "mar_Deva"}
TARGET_TOKENIZER = "target_tokenizer"


@dataclass(frozen=True)
class DecodeParams:
    num_beams: int = 4
    max_new_tokens: int = 128
    length_penalty: float = 1.0
    batch_size: int = 16
    max_source_len: int = 256


@dataclass(frozen=True)
class MtModel:
    """A resolved seq2seq model: where it is and its fingerprint."""

    spec: str
    path: Path
    fingerprint: str

    def describe(self) -> dict:
        return {"spec": self.spec, "fingerprint": self.fingerprint}


def resolve(spec: str | Path) -> MtModel:
    """A local seq2seq directory or a Hugging Face id (offline: only if in the local HF cache)."""
    spec = str(spec)
    local = Path(spec).expanduser()
    if local.is_dir():
        path = local
    elif local.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise BenchError(f"MT model {spec!r} is neither a model directory nor a Hugging Face id",
                         "give a seq2seq model directory (config.json + weights) or an id such as "
                         "Helsinki-NLP/opus-mt-sw-en")
    else:
        path = models.hub_snapshot(spec)
    if not (path / "config.json").exists() and not mt_model.is_bench_model(path):
        raise BenchError(f"{path} has no config.json", "is it a transformers seq2seq model directory?")
    return MtModel(spec, path, mt_fingerprint(path))


def mt_fingerprint(path: Path) -> str:
    """The model fingerprint (config, weights, tokenizer) plus any other tokenizer files it decodes with."""
    digest = hashlib.sha256(models.model_fingerprint(path).encode())
    extra = sorted(p for p in path.iterdir()
                   if p.is_file() and p.suffix in (".spm", ".model") or p.name in ("vocab.json", mt_model.MODEL_FILE))
    sub = path / TARGET_TOKENIZER
    if sub.is_dir():
        extra += sorted(p for p in sub.iterdir() if p.is_file())
    for p in extra:
        digest.update(f"{p.relative_to(path)}\0{models.cached_sha256(p)}\n".encode())
    return digest.hexdigest()[:16]


def translate(texts: Sequence[str], model: str | Path | MtModel, src_lang: str, tgt_lang: str = "en",
              params: DecodeParams = DecodeParams()) -> list[str]:
    """Translations of ``texts`` (same order), cached by model fingerprint, texts and parameters."""
    ref = model if isinstance(model, MtModel) else resolve(model)
    texts = list(texts)
    key = {"artifact": "translations", "version": TRANSLATE_VERSION, "model": ref.fingerprint,
           "src": src_lang, "tgt": tgt_lang, "params": asdict(params), "texts": fingerprint(texts, 32),
           "n": len(texts)}

    def build(tmp: Path) -> None:
        out = translate_uncached(texts, ref, src_lang, tgt_lang, params)
        (tmp / "translations.json").write_text(json.dumps(out, ensure_ascii=False))

    path = cached_build("translations", key, timed("nmt-translations", len(texts), build))
    return json.loads((path / "translations.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=2)
def _load(path: str, fingerprint_: str, device: str = "cpu"):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from bench.infra.library_output import quiet_transformers

    quiet_transformers()  # no "Loading weights" bar
    log.info("loading MT model %s", path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        target = Path(path) / TARGET_TOKENIZER
        decoder_tok = AutoTokenizer.from_pretrained(str(target)) if target.is_dir() else tokenizer
        model = AutoModelForSeq2SeqLM.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot load the MT model in {path}: {str(exc).splitlines()[0][:160]}",
                         "is it a transformers seq2seq model directory?") from exc
    model.to(device).eval()
    return model, tokenizer, decoder_tok


def language_codes(tokenizer, src_lang: str, tgt_lang: str) -> tuple[str | None, int | None]:
    """(source code for ``tokenizer.src_lang``, forced BOS id) for multilingual tokenizers, else Nones."""
    if not hasattr(tokenizer, "src_lang"):
        return None, None
    vocab = tokenizer.get_vocab()
    def code(lang: str) -> str | None:
        for candidate in (NLLB_CODES.get(lang), f"__{lang}__", lang):
            if candidate and candidate in vocab:
                return candidate
        return None
    src, tgt = code(src_lang), code(tgt_lang)
    if src is None or tgt is None:
        raise BenchError(f"the MT model's tokenizer has no language code for {src_lang if src is None else tgt_lang}",
                         "choose a model that covers both languages")
    return src, vocab[tgt]


def translate_uncached(texts: Sequence[str], ref: MtModel, src_lang: str, tgt_lang: str = "en",
                       params: DecodeParams = DecodeParams()) -> list[str]:
    """Translations in the input order, decoded in length-sorted batches with a progress bar."""
    import torch
    from bench.infra import progress

    if mt_model.is_bench_model(ref.path):
        tokenizer, generate = _bench_generator(ref, params)
    else:
        tokenizer, generate = _hf_generator(ref, src_lang, tgt_lang, params)
    torch.set_num_threads(batching.threads())
    ids = tokenizer(list(texts), truncation=True, max_length=params.max_source_len)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: (-len(ids[i]), i))
    out: list[str | None] = [None] * len(texts)
    log.info("translating %d texts %s→%s with %s (beam %d)", len(texts), src_lang, tgt_lang, ref.spec,
             params.num_beams)
    with torch.inference_mode(), progress.bar(total=len(texts), desc="translating", unit="text", mininterval=5.0,
                                      disable=len(texts) < 64) as bar:
        for start in range(0, len(order), params.batch_size):
            rows = order[start:start + params.batch_size]
            for i, text in zip(rows, generate([ids[i] for i in rows])):
                out[i] = text.strip()
            bar.update(len(rows))
    return out  # type: ignore[return-value]


def _hf_generator(ref: MtModel, src_lang: str, tgt_lang: str, params: DecodeParams):
    """(tokenizer, batch of source ids → translations) for a Hugging Face seq2seq model."""
    device = devices.resolve()
    model, tokenizer, decoder_tok = _load(str(ref.path), ref.fingerprint, str(device))
    src_code, forced_bos = language_codes(tokenizer, src_lang, tgt_lang)
    if src_code is not None:
        tokenizer.src_lang = src_code
    extra = {"forced_bos_token_id": forced_bos} if forced_bos is not None else {}
    max_new = min(params.max_new_tokens, _max_positions(model.config) - 2)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def generate(batch: list[list[int]]) -> list[str]:
        input_ids, mask = (t.to(device) for t in batching.pad_batch(batch, range(len(batch)), pad))  # right padding
        generated = model.generate(input_ids=input_ids, attention_mask=mask, num_beams=params.num_beams,
                                   max_new_tokens=max_new, length_penalty=params.length_penalty,
                                   do_sample=False, **extra)
        return decoder_tok.batch_decode(generated.cpu(), skip_special_tokens=True)

    return tokenizer, generate


@lru_cache(maxsize=2)
def _load_bench_model(path: str, fingerprint_: str, device: str = "cpu"):
    log.info("loading MT model %s", path)
    model, encoder, tokenizer = mt_model.load(Path(path))
    return model.to(device), encoder.to(device), tokenizer


def _bench_generator(ref: MtModel, params: DecodeParams):
    """(tokenizer, batch of source ids → translations) for bench's own models (copy-aware beam search)."""
    model, encoder, tokenizer = _load_bench_model(str(ref.path), ref.fingerprint, str(devices.resolve()))

    def generate(batch: list[list[int]]) -> list[str]:
        return mt_model.translate(model, encoder, tokenizer, batch, beams=params.num_beams,
                                  max_new_tokens=params.max_new_tokens, length_penalty=params.length_penalty)

    return tokenizer, generate


def _max_positions(config) -> int:
    """How many target positions the decoder has (generation must not run past them)."""
    decoder = getattr(config, "decoder", None)
    for cfg in (decoder, config):
        value = getattr(cfg, "max_position_embeddings", None) if cfg is not None else None
        if value:
            return int(value)
    return 1 << 30


def translate_queries(queries: Sequence[tuple[str, str]], model: str | Path | MtModel, src_lang: str,
                      tgt_lang: str = "en", params: DecodeParams = DecodeParams()) -> list[tuple[str, str]]:
    """``[(qid, text)]`` → ``[(qid, translation)]``."""
    translations = translate([t for _, t in queries], model, src_lang, tgt_lang, params)
    return [(qid, t) for (qid, _), t in zip(queries, translations)]
