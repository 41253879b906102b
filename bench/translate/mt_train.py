"""`bench train mt`: a small foreign→English translation model trained on the pair's bitext, on CPU.

Architecture (why: DESIGN.md §7 gives 2 CPU cores and an hour): the encoder is the packaged
multilingual encoder (multilingual-e5-small, which already represents Swahili, Hausa and Yoruba),
*frozen*, so its token states for the whole bitext are computed once and cached
(:func:`bench.translate.mt_data.source_states`); only a small Transformer decoder with
cross-attention (``BertLMHeadModel``, a few layers) over an English unigram vocabulary learned on the
bitext is trained, and a training step costs the decoder alone. A model trained from scratch would
have to learn Swahili from ~35k sentences as well; here it only learns to write English.

The result is a plain ``transformers`` ``EncoderDecoderModel`` (the frozen encoder + the trained
decoder) saved with ``save_pretrained`` together with the source tokenizer (root) and the target
tokenizer (``target_tokenizer/``), so :func:`bench.translate.nmt.translate` loads it like any
Hugging Face seq2seq model directory. It is a cached artifact under ``BENCH_HOME/mt-models/<fp>``
keyed by the bitext fingerprint, the encoder fingerprint, the configuration and the seed. Beside it:
``curve.csv`` / ``curve.png`` (training loss, held-out loss and chrF on a held-out slice of the
bitext; never FLORES) and ``bench-mt.json`` (configuration, time, peak memory).
"""

from __future__ import annotations

import csv
import logging
import math
import resource
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from bench import models
from bench.errors import BenchError
from bench.store import artifact_dir, cached_build, is_complete
from bench.translate import mt_data

log = logging.getLogger(__name__)

TRAIN_VERSION = 1  # bump when training changes in a way the config does not show


@dataclass(frozen=True)
class MtConfig:
    encoder: str = "multilingual-e5-small"  # frozen; any BERT-like model spec
    encoder_layer: int = 12  # the decoder attends to this layer's states
    max_source_len: int = 128
    max_target_len: int = 128
    vocab_size: int = 8000
    d_model: int = 256  # the encoder's 384-d states are projected (learned) to the decoder's width
    layers: int = 3
    heads: int = 4
    ffn: int = 1024
    dropout: float = 0.1
    label_smoothing: float = 0.1
    lr: float = 1e-3
    warmup: int = 100
    max_steps: int = 4000
    batch_tokens: int = 2500  # target tokens (padded) per step
    # training ends at max_steps or after max_minutes, whichever comes first; the learning rate decays
    # linearly to 0 with progress = max(step / max_steps, minutes / max_minutes), so a time-bounded run
    # still ends with a decayed rate (bench-mt.json records which bound ended it)
    max_minutes: float = 30.0
    dev_size: int = 500  # held-out bitext pairs (the training curve; FLORES is never seen)
    eval_every: int = 50
    eval_sentences: int = 100  # held-out pairs translated (greedy) for the curve's chrF
    bf16: bool = False  # bfloat16 autocast for the decoder

    @classmethod
    def from_dict(cls, values: dict | None) -> "MtConfig":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BenchError(f"unknown MT training option(s): {', '.join(unknown)}", "known: " + ", ".join(sorted(known)))
        return replace(cls(), **values)


def model_key(bitext_fp: str, encoder_fp: str, config: MtConfig, seed: int) -> dict:
    return {"artifact": "mt-model", "version": TRAIN_VERSION, "bitext": bitext_fp, "encoder": encoder_fp,
            "config": asdict(config), "seed": seed}


def train_mt(pair, *, config: MtConfig | dict | None = None, seed: int = 0) -> Path:
    """Train (or reuse) the pair's foreign→English model; returns its model directory."""
    from bench.bitext import load_bitext
    from bench.pairs import get_pair

    pair = get_pair(pair) if isinstance(pair, str) else pair
    if pair.doc_lang != "en":
        raise BenchError(f"bench trains foreign→English query translation; {pair.name} has {pair.doc_lang} documents",
                         "choose a pair with English documents (sw-en, ha-en, yo-en)")
    config = config if isinstance(config, MtConfig) else MtConfig.from_dict(config)
    bitext = load_bitext(pair, noise=0.0, seed=seed)
    return train_on_bitext(bitext.pairs, bitext.fingerprint, config, seed)


def cached_model(pair, *, config: MtConfig | dict | None = None, seed: int = 0) -> Path | None:
    """The trained model directory if it is already cached (no training), else None."""
    from bench.bitext import load_bitext
    from bench.pairs import get_pair

    pair = get_pair(pair) if isinstance(pair, str) else pair
    config = config if isinstance(config, MtConfig) else MtConfig.from_dict(config)
    bitext = load_bitext(pair, noise=0.0, seed=seed)
    path = artifact_dir("mt-models", model_key(bitext.fingerprint, models.resolve(config.encoder).fingerprint,
                                               config, seed))
    return path if is_complete(path) else None


def train_on_bitext(pairs: Sequence[tuple[str, str]], bitext_fp: str, config: MtConfig, seed: int = 0) -> Path:
    """Train on ``pairs`` (foreign, english) unless the model for this exact input is cached."""
    ref = models.resolve(config.encoder)
    key = model_key(bitext_fp, ref.fingerprint, config, seed)
    path = artifact_dir("mt-models", key)
    if not is_complete(path):
        log.warning("training an MT model on %d sentence pairs: this takes up to %.0f minutes on CPU "
                    "(cached afterwards in %s)", len(pairs), config.max_minutes, path)
    return cached_build("mt-models", key, lambda tmp: _train(tmp, list(pairs), ref, config, seed))


# --- training -------------------------------------------------------------------------------------


class _Data:
    """Source states and target ids of the bitext, and how to batch them."""

    def __init__(self, states: mt_data.SourceStates, target_ids: list[list[int]]):
        self.states, self.target_ids = states, target_ids

    def batch(self, rows: Sequence[int]):
        import torch

        src_len = [min(int(self.states.lengths()[i]), 10_000) for i in rows]
        width = max(src_len)
        dim = self.states.states.shape[1]
        src = torch.zeros((len(rows), width, dim), dtype=torch.float32)
        src_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, i in enumerate(rows):
            src[j, :src_len[j]] = torch.from_numpy(np.asarray(self.states.get(i), dtype=np.float32))
            src_mask[j, :src_len[j]] = 1
        tgt_w = max(len(self.target_ids[i]) for i in rows) + 1
        dec_in = torch.zeros((len(rows), tgt_w), dtype=torch.long)  # <pad> = 0
        labels = torch.full((len(rows), tgt_w), -100, dtype=torch.long)
        for j, i in enumerate(rows):
            ids = self.target_ids[i]
            dec_in[j, :len(ids) + 1] = torch.tensor([1, *ids])  # <s> ids
            labels[j, :len(ids) + 1] = torch.tensor([*ids, 2])  # ids </s>
        return src, src_mask, dec_in, (dec_in != 0).long(), labels


def batches(lengths: Sequence[int], rows: Sequence[int], batch_tokens: int, rng: np.random.Generator) -> list[list[int]]:
    """Rows grouped by target length (with jitter) within a padded-token budget, in a shuffled order."""
    rows = list(rows)
    jitter = rng.random(len(rows))
    order = sorted(range(len(rows)), key=lambda k: (lengths[rows[k]] + 2 * jitter[k]))
    out, current, width = [], [], 0
    for k in order:
        i = rows[k]
        w = max(width, lengths[i] + 1)
        if current and w * (len(current) + 1) > batch_tokens:
            out.append(current)
            current, w = [], lengths[i] + 1
        current.append(i)
        width = w
    if current:
        out.append(current)
    rng.shuffle(out)
    return out


def build_model(encoder_ref: models.ModelRef, config: MtConfig, vocab_size: int):
    from transformers import BertConfig, BertLMHeadModel, EncoderDecoderModel

    encoder = mt_data.truncated_encoder(encoder_ref, config.encoder_layer)
    dec_config = BertConfig(
        vocab_size=vocab_size, hidden_size=config.d_model, num_hidden_layers=config.layers,
        num_attention_heads=config.heads, intermediate_size=config.ffn, hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout, max_position_embeddings=config.max_target_len + 8,
        type_vocab_size=1, is_decoder=True, add_cross_attention=True, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, tie_word_embeddings=True,
    )
    model = EncoderDecoderModel(encoder=encoder, decoder=BertLMHeadModel(dec_config))
    model.config.decoder_start_token_id, model.config.pad_token_id, model.config.eos_token_id = 1, 0, 2
    gen = model.generation_config
    gen.decoder_start_token_id, gen.pad_token_id, gen.eos_token_id, gen.bos_token_id = 1, 0, 2, 1
    return model


def _train(out: Path, pairs: list[tuple[str, str]], ref: models.ModelRef, config: MtConfig, seed: int) -> None:
    import torch
    from tqdm import tqdm

    t0 = time.time()
    torch.manual_seed(seed)
    torch.set_num_threads(models.threads())
    rng = np.random.default_rng(seed)
    foreign, english = [f for f, _ in pairs], [e for _, e in pairs]
    train_rows, dev_rows = mt_data.bitext_split(len(pairs), config.dev_size, seed)
    target_tok = mt_data.train_target_tokenizer([english[i] for i in train_rows], config.vocab_size,
                                                out / "target_tokenizer")
    target_ids = target_tok(english, add_special_tokens=False, truncation=True,
                            max_length=config.max_target_len - 1)["input_ids"]
    states = mt_data.source_states(ref, config.encoder_layer, config.max_source_len, foreign,
                                   mt_data.texts_fingerprint(foreign))
    data = _Data(states, target_ids)
    model = build_model(ref, config, len(target_tok))
    trainable = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    log.info("decoder: %.1fM trainable parameters; %d training, %d held-out pairs",
             sum(p.numel() for p in trainable) / 1e6, len(train_rows), len(dev_rows))
    optim = torch.optim.AdamW(trainable, lr=config.lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01)
    lengths = [len(x) for x in target_ids]
    curve: list[dict] = []
    step, epoch, running, seen, stopped = 0, 0, 0.0, 0, "max_steps"
    train_start = time.time()
    bar = tqdm(total=config.max_steps, desc="train mt", unit="step", mininterval=10.0)
    while step < config.max_steps and stopped == "max_steps":
        epoch += 1
        for rows in batches(lengths, train_rows, config.batch_tokens, rng):
            model.train()
            src, src_mask, dec_in, dec_mask, labels = data.batch(rows)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                logits = model(encoder_outputs=(src,), attention_mask=src_mask, decoder_input_ids=dec_in,
                               decoder_attention_mask=dec_mask).logits
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                     ignore_index=-100, label_smoothing=config.label_smoothing)
            progress = max(step / config.max_steps, (time.time() - train_start) / 60 / config.max_minutes)
            lr = config.lr * _lr_factor(step, config.warmup, progress)
            for group in optim.param_groups:
                group["lr"] = lr
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optim.step()
            step += 1
            running, seen = running + loss.item(), seen + 1
            bar.update(1)
            bar.set_postfix(loss=f"{running / seen:.3f}", epoch=epoch)
            minutes = (time.time() - train_start) / 60
            last = step >= config.max_steps or minutes >= config.max_minutes
            if step % config.eval_every == 0 or last:
                point = {"step": step, "epoch": epoch, "minutes": round(minutes, 2), "lr": lr,
                         "train_loss": running / seen, **_evaluate(model, data, target_tok, dev_rows, english, config)}
                curve.append(point)
                running, seen = 0.0, 0
                log.info("step %d (epoch %d, %.1f min): train loss %.3f, held-out loss %.3f, held-out chrF %.1f",
                         step, epoch, minutes, point["train_loss"], point["dev_loss"], point["dev_chrf"])
                _write_curve(out, curve)
            if last:
                if step < config.max_steps:
                    stopped = "max_minutes"
                    log.warning("MT training stopped by its time budget (%.0f min) at step %d of %d",
                                config.max_minutes, step, config.max_steps)
                break
    bar.close()
    train_minutes = (time.time() - train_start) / 60
    model.save_pretrained(out)
    models.load(ref)[1].save_pretrained(out)
    _plot_curve(out, curve)
    mt_data.write_json(out / "bench-mt.json", {
        "config": asdict(config), "seed": seed, "encoder": ref.describe(), "pairs": len(pairs),
        "train_pairs": len(train_rows), "dev_pairs": len(dev_rows), "steps": step, "epochs": epoch,
        "stopped_by": stopped, "train_minutes": round(train_minutes, 2),
        "total_minutes": round((time.time() - t0) / 60, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "final": curve[-1] if curve else None,
    })


def _lr_factor(step: int, warmup: int, progress: float) -> float:
    """Linear warmup over ``warmup`` steps, then linear decay to 0 as ``progress`` reaches 1."""
    return min((step + 1) / warmup, 1.0) * max(0.0, 1.0 - progress)


def _evaluate(model, data: _Data, target_tok, dev_rows, english: list[str], config: MtConfig) -> dict:
    """Held-out loss (teacher forcing, no smoothing) and chrF of greedy translations."""
    import sacrebleu
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    model.eval()
    total, tokens = 0.0, 0
    hyps = []
    rows = list(dev_rows)
    with torch.inference_mode():
        for start in range(0, len(rows), 64):
            src, src_mask, dec_in, dec_mask, labels = data.batch(rows[start:start + 64])
            logits = model(encoder_outputs=(src,), attention_mask=src_mask, decoder_input_ids=dec_in,
                           decoder_attention_mask=dec_mask).logits
            total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                       ignore_index=-100, reduction="sum").item()
            tokens += int((labels != -100).sum())
        sample = rows[:config.eval_sentences]
        for start in range(0, len(sample), 50):
            src, src_mask, *_ = data.batch(sample[start:start + 50])
            out = model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=src), attention_mask=src_mask,
                                 num_beams=1, do_sample=False, max_new_tokens=config.max_target_len)
            hyps += target_tok.batch_decode(out, skip_special_tokens=True)
    chrf = sacrebleu.corpus_chrf(hyps, [[english[i] for i in sample]]).score if sample else 0.0
    return {"dev_loss": total / max(tokens, 1), "dev_chrf": chrf, "dev_ppl": math.exp(min(total / max(tokens, 1), 50))}


def _write_curve(out: Path, curve: list[dict]) -> None:
    with open(out / "curve.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(curve[0]))
        writer.writeheader()
        writer.writerows(curve)


def _plot_curve(out: Path, curve: list[dict]) -> None:
    if not curve:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p["step"] for p in curve]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(steps, [p["train_loss"] for p in curve], label="train (label-smoothed)")
    a.plot(steps, [p["dev_loss"] for p in curve], label="held-out bitext")
    a.set_xlabel("step"), a.set_ylabel("cross-entropy"), a.legend()
    b.plot(steps, [p["dev_chrf"] for p in curve], marker="o")
    b.set_xlabel("step"), b.set_ylabel("chrF (held-out bitext, greedy)")
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=100)
    plt.close(fig)
