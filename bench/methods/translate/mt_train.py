"""`bench train mt`: a small foreign→English translation model trained on the pair's bitext.

Architecture (:mod:`bench.methods.translate.mt_model`; why: DESIGN.md §7 gives 2 CPU cores and an hour): the
packaged multilingual encoder (multilingual-e5-small, which already represents Swahili, Hausa and
Yoruba) is *frozen*, so its layer-8 token states for the whole bitext are computed once and cached
(:func:`bench.methods.translate.mt_data.source_states`) and a step costs the decoder alone. A small
Transformer decoder reads those states plus the source word embeddings and writes pieces of the
encoder's own sentencepiece vocabulary (restricted to the English side of the bitext), with a
pointer-generator copy head for names and numbers. A model trained from scratch would have to learn
Swahili from ~35k sentences as well; here it only learns to write English, and to copy.

Training is a fixed number of steps with a seeded order, so a rerun gives the same model; the model
is a cached artifact under ``BENCH_HOME/mt-models/<fp>`` keyed by the bitext fingerprint, the encoder
fingerprint, the configuration and the seed. Its state (trained weights, optimizer, RNGs, the batch feed's
position, the held-out curve) is saved every 50 steps to ``BENCH_HOME/mt-models-work/<fp>``, so a stopped
training resumes there and ends with the uninterrupted model. The step loop, learning-rate schedule and curve files are
:mod:`bench.infra.training`'s; the batches, word dropout and held-out evaluation are this module's.
Beside it: ``curve.csv`` / ``curve.png`` (training loss, held-out loss and chrF on a held-out slice of
the bitext; never FLORES) and ``bench-mt.json`` (configuration, device, precision, time, peak memory).
:func:`bench.methods.translate.nmt.translate` loads it like any model.

The decoder trains on :func:`bench.infra.devices.resolve`'s device (``--device``), under bfloat16 autocast on
CUDA and in fp32 on the CPU. The model is not keyed by device: the batch order and word dropout are
drawn on the CPU whatever the device, but dropout and float arithmetic differ on a GPU, so a model
trained there differs from a CPU-trained one in its numbers (not in its recipe).
"""

from __future__ import annotations

import logging
import math
import resource
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from bench.data import models
from bench.errors import BenchError
from bench.infra import batching, devices
from bench.infra.rates import expected, resumed_at, timed
from bench.infra.store import artifact_dir, bench_home, cached_build, fingerprint, is_complete
from bench.infra.training import STATE_FILE, Every, Loop, Panel, curve_png, warmup_times_decay, write_curve
from bench.methods.token_states import TokenStates
from bench.methods.translate import mt_data
from bench.methods.translate.mt_config import MtConfig, rate_name
from bench.methods.translate.mt_model import (BOS, EOS, PAD, UNK, Architecture, CopyTranslator, Vocabulary, decode,
                                              pad_rows, token_loss)
from bench.methods.translate.mt_model import save as save_model

log = logging.getLogger(__name__)

TRAIN_VERSION = 2  # bump when training changes in a way the config does not show
SAVE_EVERY = 50  # steps between saved states of a training (about 1.5 to 3 minutes of a CPU step)
CURVE_PANELS = (Panel("cross-entropy", (("train_loss", "train (label-smoothed, word dropout)"),
                                        ("dev_loss", "held-out bitext"))),
                Panel("chrF (held-out bitext, greedy)", (("dev_chrf", None),), marker="o"))


# Options added after models were first cached: they enter the key only when they differ from their default,
# so the models trained before keep their fingerprints
_KEYED_WHEN_SET = {"shortlist": 0, "output_clusters": ()}


def model_key(bitext_fp: str, encoder_fp: str, config: MtConfig, seed: int) -> dict:
    keyed = {k: v for k, v in asdict(config).items() if _KEYED_WHEN_SET.get(k, object()) != v}
    return {"artifact": "mt-model", "version": TRAIN_VERSION, "bitext": bitext_fp, "encoder": encoder_fp,
            "config": keyed, "seed": seed}


def train_mt(pair, *, config: MtConfig | dict | None = None, noise: float = 0.0, seed: int = 0) -> Path:
    """Train (or reuse) the pair's foreign→English model; returns its model directory.

    ``noise``: the fraction of the bitext replaced by misaligned pairs (``--bitext-noise``)."""
    from bench.data.bitext import load_bitext
    from bench.data.pairs import get_pair

    pair = get_pair(pair) if isinstance(pair, str) else pair
    if pair.doc_lang != "en":
        raise BenchError(f"bench trains foreign→English query translation; {pair.name} has {pair.doc_lang} documents",
                         "choose a pair with English documents (sw-en, ha-en, yo-en)")
    config = config if isinstance(config, MtConfig) else MtConfig.from_dict(config)
    bitext = load_bitext(pair, noise=noise, seed=seed)
    return train_on_bitext(bitext.pairs, bitext.fingerprint, config, seed)


def train_on_bitext(pairs: Sequence[tuple[str, str]], bitext_fp: str, config: MtConfig, seed: int = 0, *,
                    save_every: int = SAVE_EVERY, callback: Callable[[int, dict], None] | None = None) -> Path:
    """Train on ``pairs`` (foreign, english) unless the model for this exact input is cached.

    The training's state is saved every ``save_every`` steps to ``BENCH_HOME/mt-models-work/<fingerprint>``;
    a training stopped by anything (a kill, the machine's end) resumes there on the next call with the same
    inputs and ends with the model an uninterrupted one has. ``callback(step, record)``: after every step."""
    ref = models.resolve(config.encoder)
    key = model_key(bitext_fp, ref.fingerprint, config, seed)
    path = artifact_dir("mt-models", key)
    work = bench_home() / "mt-models-work" / fingerprint(key)
    if not is_complete(path):
        log.warning("training an MT model on %d sentence pairs (%d steps%s, at most %.0f minutes; cached afterwards "
                    "in %s)", len(pairs), config.max_steps, expected(rate_name(config), config.max_steps),
                    config.max_minutes, path)

    def build(tmp: Path) -> None:
        _train(tmp, list(pairs), ref, config, seed, Resume(work / STATE_FILE, fingerprint(key), save_every), callback)

    path = cached_build("mt-models", key, timed(rate_name(config), config.max_steps, build))
    shutil.rmtree(work, ignore_errors=True)
    return path


@dataclass(frozen=True)
class Resume:
    """Where a training's partial state is saved (``path``), for which training (``key``), how often."""

    path: Path
    key: str
    every: int


# --- training -------------------------------------------------------------------------------------


class _Data:
    """Source states, source ids and target ids of the bitext (as extended local ids), and batches."""

    def __init__(self, states: TokenStates, source_ids: list[list[int]], english_ids: list[list[int]],
                 vocab: Vocabulary):
        if [len(s) for s in source_ids] != states.lengths().tolist():
            raise RuntimeError("cached source states do not match the tokenised bitext")
        self.states, self.source_ids, self.vocab = states, source_ids, vocab
        extended = [vocab.extend_one(ids) for ids in source_ids]
        self.source_local = [row for row, _ in extended]
        self.extensions = [ext for _, ext in extended]
        self.target_ids = [vocab.targets(t, ext) for t, ext in zip(english_ids, self.extensions)]

    def label_counts(self, rows: Sequence[int]) -> np.ndarray:
        """How often each local id is a label of ``rows`` (each row's closing end-of-sentence piece counted)."""
        pieces = np.concatenate([[], *(self.target_ids[i] for i in rows)]).astype(np.int64)
        counts = np.bincount(pieces, minlength=len(self.vocab))[:len(self.vocab)]
        counts[EOS] += len(rows)
        return counts

    def by_frequency(self, rows: Sequence[int]):
        """Every local id, the most frequent label of ``rows`` first; ties go to the lower id."""
        import torch

        return torch.from_numpy(np.argsort(-self.label_counts(rows), kind="stable"))

    def frequent(self, rows: Sequence[int], n: int):
        """The ``n`` local ids most frequent as labels of ``rows`` (only those seen), sorted."""
        import torch

        counts = self.label_counts(rows)
        top = self.by_frequency(rows).numpy()[:n]
        return torch.from_numpy(np.sort(top[counts[top] > 0]))

    def batch(self, rows: Sequence[int]):
        """(states, source ids, source mask, extended source ids, decoder input, labels)."""
        import torch

        from bench.infra.batching import pad_batch

        source_ids, mask = pad_batch(self.source_ids, rows, int(self.vocab.ids[PAD]))
        states = torch.zeros((len(rows), source_ids.shape[1], self.states.states.shape[1]), dtype=torch.float32)
        for j, i in enumerate(rows):
            states[j, :len(self.source_ids[i])] = torch.from_numpy(np.asarray(self.states.get(i), dtype=np.float32))
        source_local = pad_rows([self.source_local[i] for i in rows], PAD)
        dec_in = pad_rows([[BOS, *self.target_ids[i]] for i in rows], PAD)
        labels = pad_rows([[*self.target_ids[i], EOS] for i in rows], -100)
        return states, source_ids, mask, source_local, dec_in, labels


def batch_shortlist(frequent, labels, vocab_size: int):
    """The sorted local ids the generator is normalised over in a step: ``frequent`` and the batch's labels
    that are in the vocabulary (not padding, not extended ids)."""
    import torch

    seen = labels[(labels >= 0) & (labels < vocab_size)]
    return torch.unique(torch.cat([frequent, seen]))


def batches(lengths: Sequence[int], rows: Sequence[int], batch_tokens: int,
            rng: np.random.Generator) -> list[list[int]]:
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


def build_model(encoder_ref: models.ModelRef, config: MtConfig, vocab: Vocabulary, by_rank=None) -> CopyTranslator:
    """A fresh decoder; its output embeddings start from the encoder's embeddings of the kept pieces.

    ``by_rank``: the local ids by label frequency, for an adaptive softmax (``config.output_clusters``)."""
    import torch

    clusters = tuple(c for c in config.output_clusters if c < len(vocab))
    if clusters != config.output_clusters:
        log.info("adaptive softmax cutoffs %s: %s kept, below the %d target pieces", list(config.output_clusters),
                 list(clusters) or "none", len(vocab))

    encoder, _ = models.load(encoder_ref)
    embeddings = encoder.get_input_embeddings().weight.detach()
    arch = Architecture(encoder=encoder_ref.describe(), encoder_layer=config.encoder_layer,
                        source_dim=encoder.config.hidden_size, d_model=config.d_model, layers=config.layers,
                        heads=config.heads, ffn=config.ffn, dropout=config.dropout,
                        max_target_len=config.max_target_len, output_clusters=clusters)
    rows = embeddings[torch.from_numpy(vocab.ids)].float()
    if rows.shape[1] > config.d_model:  # keep the principal directions of the pieces' embeddings
        centred = rows - rows.mean(0)
        _, _, v = torch.linalg.svd(centred, full_matrices=False)
        rows = centred @ v[:config.d_model].T
    init = rows if rows.shape[1] == config.d_model else None
    return CopyTranslator(arch, vocab, embeddings, init, by_rank)


def _epochs(lengths: Sequence[int], rows: Sequence[int], batch_tokens: int, rng: np.random.Generator):
    """(epoch, rows) of every step: the batches of one epoch after another, all drawn from ``rng``."""
    epoch = 0
    while True:
        epoch += 1
        order = batches(lengths, rows, batch_tokens, rng)
        if not order:
            raise BenchError("no bitext pairs left to train on besides the held-out slice", "train on more bitext")
        for batch in order:
            yield epoch, batch


def _train(out: Path, pairs: list[tuple[str, str]], ref: models.ModelRef, config: MtConfig, seed: int,
           resume: Resume, callback: Callable[[int, dict], None] | None) -> None:
    import torch

    t0 = time.time()
    torch.manual_seed(seed)
    torch.set_num_threads(batching.threads())
    rng = np.random.default_rng(seed)
    foreign, english = [f for f, _ in pairs], [e for _, e in pairs]
    train_rows, dev_rows = mt_data.bitext_split(len(pairs), config.dev_size, seed)
    _, tokenizer = models.load(ref)
    source_ids = tokenizer(foreign, truncation=True, max_length=config.max_source_len)["input_ids"]
    english_ids = tokenizer(english, add_special_tokens=False, truncation=True,
                            max_length=config.max_target_len - 1)["input_ids"]
    vocab = Vocabulary.from_texts([english_ids[i] for i in train_rows], tokenizer, config.min_count)
    states = mt_data.source_states(ref, config.encoder_layer, config.max_source_len, foreign,
                                   mt_data.texts_fingerprint(foreign))
    data = _Data(states, source_ids, english_ids, vocab)
    device = devices.resolve()
    bf16 = config.bf16 and devices.bf16_autocast(device)  # CUDA only: fp32 on every CPU
    by_rank = data.by_frequency(train_rows) if config.output_clusters else None
    model = build_model(ref, config, vocab, by_rank).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    log.info("decoder: %.1fM trainable parameters, %d target pieces; %d training, %d held-out pairs",
             sum(p.numel() for p in trainable) / 1e6, len(vocab), len(train_rows), len(dev_rows))
    optim = torch.optim.AdamW(trainable, lr=config.lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01)
    feed = _epochs([len(x) for x in data.target_ids], train_rows, config.batch_tokens, rng)
    frequent = data.frequent(train_rows, config.shortlist) if config.shortlist else None

    def step_loss(step: int):
        epoch, rows = next(feed)
        model.train()
        states_b, ids_b, mask_b, local_b, dec_in, labels = data.batch(rows)
        dropped = (torch.rand(dec_in.shape) < config.input_unk) & (dec_in > EOS)  # drawn on the CPU: seeded
        dec_in = dec_in.masked_fill(dropped, UNK)
        states_b, ids_b, mask_b, local_b, dec_in, labels = _to(device, states_b, ids_b, mask_b, local_b, dec_in, labels)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            enc = model.prepare(model.memory(states_b, ids_b), mask_b)
            shortlist = None if frequent is None else batch_shortlist(frequent.to(device), labels, len(vocab))
            nll, smooth = model.loss_terms(enc, local_b, dec_in, labels, shortlist)
        return token_loss(nll.float(), smooth.float(), labels, config.label_smoothing), {"epoch": epoch}

    loop = Loop(optim, trainable, steps=config.max_steps, max_grad_norm=1.0, max_minutes=config.max_minutes,
                lr=lambda step: config.lr * warmup_times_decay(step, config.warmup, step / config.max_steps),
                desc="train mt", mininterval=10.0, show=("epoch",))
    curve: list[dict] = []  # a point per evaluation; the loop's curve has every step

    def evaluate(step: int, record: dict) -> None:
        done = curve[-1]["step"] if curve else 0
        losses = [r["loss"] for r in loop.curve[done:]]
        # minutes of training so far, over every process where a resumed state says (else this process's)
        minutes = loop.minutes if loop.seconds_before is None else loop.seconds_before / 60 + loop.minutes
        point = {"step": step, "epoch": record["epoch"], "minutes": round(minutes, 2), "lr": record["lr"],
                 "train_loss": sum(losses, 0.0) / len(losses),
                 **_evaluate(model, data, tokenizer, dev_rows, english, config)}
        curve.append(point)
        log.info("step %d (epoch %d, %.1f min): train loss %.3f, held-out loss %.3f, held-out chrF %.1f",
                 step, point["epoch"], minutes, point["train_loss"], point["dev_loss"], point["dev_chrf"])
        write_curve(curve, out / "curve.csv")

    def trained() -> dict:
        return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}

    state = loop.resume(resume.path, resume.key)
    if state is not None:  # the weights, the held-out curve, and the batch feed where the saved training was
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in state["trained"]:
                    param.copy_(state["trained"][name].to(param.device))
        curve.extend(state["evals"])
        for _ in range(loop.step):
            next(feed)
        resumed_at(loop.step)
        log.info("resuming the MT training at step %d of %d", loop.step, config.max_steps)
    save = Every(resume.every, lambda step, record: loop.save(resume.path, resume.key, trained=trained(),
                                                             evals=list(curve)))
    loop.run(step_loss, hooks=[Every(config.eval_every, evaluate, at_end=True), save], callback=callback)
    if loop.stopped_by == "max_minutes":
        log.warning("MT training stopped by its time budget (%.0f min) at step %d of %d: the model depends on this "
                    "machine's speed", config.max_minutes, loop.step, config.max_steps)
    model.cpu().eval()
    save_model(model, tokenizer, out)
    if curve:
        (out / "curve.png").write_bytes(curve_png(curve, CURVE_PANELS, figsize=(10, 4)))
    execution = devices.describe(device)
    mt_data.write_json(out / "bench-mt.json", {
        "config": asdict(config), "seed": seed, "encoder": ref.describe(), "pairs": len(pairs),
        "train_pairs": len(train_rows), "dev_pairs": len(dev_rows), "target_pieces": len(vocab), "steps": loop.step,
        "epochs": loop.curve[-1]["epoch"] if loop.curve else 0, "stopped_by": loop.stopped_by,
        "device": execution["device"], "threads": execution.get("threads"),
        "precision": "bf16-autocast" if bf16 else "fp32",
        "train_minutes": round(loop.seconds / 60, 2), "total_minutes": round((time.time() - t0) / 60, 2),
        "resumed_at_step": int(state["step"]) if state is not None else None,
        "train_minutes_total": round(loop.seconds_total / 60, 2) if loop.seconds_total is not None else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "final": curve[-1] if curve else None,
    })


def _evaluate(model: CopyTranslator, data: _Data, tokenizer, dev_rows, english: list[str], config: MtConfig) -> dict:
    """Held-out loss (teacher forcing, no smoothing) and chrF of greedy translations."""
    import sacrebleu
    import torch

    model.eval()
    device = model.out_bias.device
    total, tokens = 0.0, 0
    hyps = []
    rows = list(dev_rows)
    with torch.inference_mode():
        for start in range(0, len(rows), 64):
            states_b, ids_b, mask_b, local_b, dec_in, labels = _to(device, *data.batch(rows[start:start + 64]))
            enc = model.prepare(model.memory(states_b, ids_b), mask_b)
            nll, _ = model.loss_terms(enc, local_b, dec_in, labels)
            total += float(nll[labels != -100].sum())
            tokens += int((labels != -100).sum())
        sample = rows[:config.eval_sentences]
        for start in range(0, len(sample), 50):
            chunk = sample[start:start + 50]
            states_b = data.batch(chunk)[0]
            hyps += decode(model, tokenizer, states_b, [data.source_ids[i] for i in chunk], beams=1,
                           max_new_tokens=config.max_target_len)
    chrf = sacrebleu.corpus_chrf(hyps, [[english[i] for i in sample]]).score if sample else 0.0
    return {"dev_loss": total / max(tokens, 1), "dev_chrf": chrf, "dev_ppl": math.exp(min(total / max(tokens, 1), 50))}


def _to(device, *tensors):
    """The tensors on ``device`` (no copy where they are already there)."""
    return tuple(t.to(device) for t in tensors)
