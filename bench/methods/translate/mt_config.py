"""The settings of the MT model ``bench train mt`` trains (:class:`MtConfig`), and its named sizes
(:data:`MT_SIZES`, the run option ``--mt-size``). Plain data: nothing here imports torch, so the run options,
the plan and its estimate read them without loading a model."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from bench.errors import BenchError


@dataclass(frozen=True)
class MtConfig:
    encoder: str = "multilingual-e5-small"  # frozen; any BERT-like model spec
    # the decoder attends to this layer's states plus the source word embeddings; layer 8 of 12 is
    # where XLM-R's states align words across languages best (SimAlign, Jalili Sabet et al. 2020)
    encoder_layer: int = 8
    max_source_len: int = 128
    max_target_len: int = 128
    min_count: int = 3  # target pieces seen fewer times on the English side are left to the copy head
    d_model: int = 256  # output embeddings start from the encoder's, projected on their top principal axes
    layers: int = 3
    heads: int = 4
    ffn: int = 1024
    dropout: float = 0.1
    label_smoothing: float = 0.1
    # decoder inputs replaced by <unk> at this rate (word dropout), so the decoder also continues after
    # a copied piece that is outside the vocabulary, which it reads as <unk>
    input_unk: float = 0.1
    lr: float = 1e-3
    warmup: int = 200
    max_steps: int = 2000
    batch_tokens: int = 3000  # target tokens (padded) per step
    # 0: the generator's softmax over every target piece in training. N > 0: over the batch's label pieces and
    # the N most frequent pieces only (a cheaper output layer; held-out loss and decoding use every piece)
    shortlist: int = 0
    # (): the generator's softmax over every target piece. (K, ...): an adaptive softmax (Grave et al. 2017) over
    # the pieces ranked by label frequency: a head of the K most frequent plus one entry per tail cluster, which
    # ends at the next cutoff (the last at the vocabulary's end). Exactly normalised, in training and decoding alike.
    # Cutoffs at or past a (small) vocabulary's size are dropped: with none left, the softmax is a full one.
    # Measured on sw-en at (1000, 4000) and not made the default: benchmarks/results/mt_adaptive.txt
    output_clusters: tuple[int, ...] = ()
    # training runs max_steps steps (the learning rate decays linearly to 0 over them), so a rerun gives
    # the same model on any machine; max_minutes is only a safety stop (bench-mt.json records which
    # bound ended it, and a time-stopped model depends on the machine's speed). 180, not 60: in fp32 on a
    # 2-core AVX2 CPU a step took 2.4 s with a one-thread process beside it, so the 60-minute stop ended sw-en's
    # default model at step 1,501 (2026-12-02, benchmarks/results/cold_run_sw-en.txt)
    max_minutes: float = 180.0
    dev_size: int = 500  # held-out bitext pairs (the training curve; FLORES is never seen)
    eval_every: int = 250
    eval_sentences: int = 100  # held-out pairs translated (greedy) for the curve's chrF
    # bfloat16 autocast for the decoder where the device has it natively (bench.infra.devices.bf16_autocast:
    # CUDA); CPU training is fp32 on every CPU (emulated bf16 is 7.5x slower on AVX2-only CPUs)
    bf16: bool = True

    def __post_init__(self):
        object.__setattr__(self, "output_clusters", tuple(int(c) for c in self.output_clusters))
        if self.shortlist and self.output_clusters:
            raise BenchError("the MT options shortlist and output_clusters exclude each other",
                             "set one of them (both are cheaper output layers for training)")
        if any(a >= b for a, b in zip((0, *self.output_clusters), self.output_clusters)):
            raise BenchError(f"output_clusters must be rising cutoffs above 0, got {list(self.output_clusters)}",
                             "give the head's size, then where each tail cluster ends, e.g. [1000, 4000]")

    @classmethod
    def from_dict(cls, values: dict | None) -> "MtConfig":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BenchError(f"unknown MT training option(s): {', '.join(unknown)}",
                             "known: " + ", ".join(sorted(known)))
        return replace(cls(), **values)


# The named sizes (``--mt-size``): what each changes in MtConfig's defaults. ``small``: 2 decoder layers, the
# adaptive softmax 1000/4000 and 2,500 steps, 0.33x the step (benchmarks/results/mt_step.txt); what it costs in
# time and chrF is said in the option's help (bench.systems.options), measured in benchmarks/results/
# mt_small_decoder.txt and mt_small_decoder_tuning.txt; not the default, by the rule of QUEUE.md item 23e.
MT_SIZES: dict[str, dict] = {
    "base": {},
    "small": {"layers": 2, "output_clusters": (1000, 4000), "max_steps": 2500},
}


def rate_name(config: MtConfig) -> str:
    """The name a training's speed is recorded under (:mod:`bench.infra.rates`): a step of the small size's
    decoder and output layer costs about a third of base's, so each is measured apart."""
    small = MtConfig.from_dict(MT_SIZES["small"])
    shape = (config.layers, config.ffn, config.d_model, config.output_clusters)
    return "mt-model small" if shape == (small.layers, small.ffn, small.d_model, small.output_clusters) else "mt-model"
