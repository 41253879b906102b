"""bench's encoder and OPTICAL trainer on CPU and CUDA: do they agree, and how much faster is the GPU?

    python benchmarks/gpu_check.py [--quick] [--cpu-threads 2] [--out FILE]

Runs from a copy of the repository on a machine with only torch, transformers and numpy installed
(no ir_datasets, pyserini, Java, mirror or installed bench): the repository root goes on
``sys.path`` and only modules whose imports those three satisfy are used. The model is randomly
initialised in multilingual-e5-small's shape (BERT: 12 layers, hidden 384, 12 heads, intermediate
1536, vocabulary 250,037; ``--quick``: 2 layers and the tokenizer's own vocabulary) with a word-level
tokenizer built offline, and the text is synthetic (seeded Zipfian words; each query drawn from its
passage; the bitext's English side is a fixed word-for-word mapping of the foreign side). Dropout is
off, so that CPU and CUDA train the same function (their random generators differ).

What it does, each through bench's own code:

- encodes passages and queries with :class:`bench.methods.retrieve.encoder.Encoder` on the CPU and on CUDA:
  vector cosine CPU vs CUDA, top-10 overlap of the dot-product rankings, passages/s, the ratio;
- trains the OPTICAL recipe (:data:`bench.methods.distill.recipes.OPTICAL`, teacher = student = the model,
  cached teacher) with :func:`bench.methods.distill.train` for a few steps on each device (losses compared
  step by step), then 300 steps on CUDA (the wall time of the whole training, the teacher's cache
  included) and loads the CUDA-trained student on the CPU.

The CPU side runs on ``--cpu-threads`` threads (default 2: this project's development machines), so
the speedups compare the GPU with that CPU. Without CUDA only the CPU figures are printed, then "no
CUDA device: GPU figures skipped"; the exit status is 0. Every figure is a ``name: value`` line.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.data import models  # noqa: E402  (bench/__init__ skips the collections where ir_datasets is missing)
from bench.methods.distill import Net, load_student, train  # noqa: E402
from bench.methods.distill.recipes import OPTICAL  # noqa: E402
from bench.methods.retrieve.encoder import Encoder  # noqa: E402

E5_SHAPE = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536,
                vocab_size=250037, max_position_embeddings=512)
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "query", "passage", ":"]
FULL = dict(layers=12, words=20000, passages=200, cuda_passages=4000, queries=50, pairs=9600, cpu_steps=6,
            long_steps=300)
QUICK = dict(layers=2, words=2000, passages=48, cuda_passages=400, queries=12, pairs=512, cpu_steps=3,
             long_steps=30)


def say(name: str, value, lines: list[str]) -> None:
    line = f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}"
    print(line, flush=True)
    lines.append(line)


# --- a random model of the encoder's shape, a tokenizer and text built offline --------------------------


def build_model(directory: Path, layers: int, words: int, quick: bool, seed: int) -> models.ModelRef:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + [f"w{i}" for i in range(words)])}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                        cls_token="[CLS]", sep_token="[SEP]")
    shape = {**E5_SHAPE, "num_hidden_layers": layers}
    if quick:
        shape["vocab_size"] = len(vocab)
    torch.manual_seed(seed)
    config = BertConfig(**shape, pad_token_id=0, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config, add_pooling_layer=False).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return models.ModelRef(str(directory), directory, models.model_fingerprint(directory),
                           models.Conventions(query_prefix="query: ", doc_prefix="passage: "))


def copy_of(ref: models.ModelRef, tag: str) -> models.ModelRef:
    """The same model under another fingerprint: bench loads (and may move) one copy per fingerprint."""
    return replace(ref, fingerprint=f"{ref.fingerprint}-{tag}")


def synthetic_text(words: int, passages: int, queries: int, pairs: int, seed: int):
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, words + 1) ** 1.1
    weights /= weights.sum()

    def sentence(lo, hi):
        return rng.choice(words, size=int(rng.integers(lo, hi)), p=weights)

    docs = [sentence(40, 180) for _ in range(passages)]
    text = [" ".join(f"w{i}" for i in d) for d in docs]
    qs = [" ".join(f"w{i}" for i in rng.choice(docs[k], size=int(rng.integers(4, 12)))) for k in range(queries)]
    mapping = rng.permutation(words)  # the "translation": a fixed word-for-word map
    foreign = [sentence(6, 40) for _ in range(pairs)]
    bitext = [(" ".join(f"w{i}" for i in f), " ".join(f"w{mapping[i]}" for i in f)) for f in foreign]
    return text, qs, bitext


# --- the checks -------------------------------------------------------------------------------------------


def threads(n: int | None) -> None:
    """The torch threads bench's code will set (``BENCH_THREADS``); None: every core."""
    if n is None:
        os.environ.pop("BENCH_THREADS", None)
    else:
        os.environ["BENCH_THREADS"] = str(n)


def encode(ref: models.ModelRef, device: str, passages: list[str], queries: list[str]):
    """(passage vectors, query vectors, passages/s) with bench's Encoder on ``device``, after a warm-up."""
    kwargs = {"device": device} if "device" in inspect.signature(Encoder).parameters else {}
    encoder = Encoder(ref, **kwargs)
    encoder.encode(passages[:8], "doc")  # warm-up: loading, CUDA context, kernels
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    docs = encoder.encode(passages, "doc").vectors
    seconds = time.perf_counter() - start
    return docs, encoder.encode(queries, "query").vectors, len(passages) / seconds


def top10_overlap(q_a, d_a, q_b, d_b) -> float:
    top_a = np.argsort(-(q_a @ d_a.T), axis=1, kind="stable")[:, :10]
    top_b = np.argsort(-(q_b @ d_b.T), axis=1, kind="stable")[:, :10]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_a, top_b)]))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def training(ref: models.ModelRef, bitext, steps: int, device: str, home: Path):
    """(per-step losses, steps/s after the first step, wall seconds of the whole training, checkpoint)."""
    os.environ["BENCH_HOME"] = str(home)  # a private store: the same configuration trains again per device
    net = Net.from_ref(copy_of(ref, f"train-{device}-{steps}"))
    config = replace(OPTICAL, teacher="gpu-check", student="gpu-check", steps=steps)
    times, losses = [], []

    def record(step, rec):
        losses.append(rec["loss"])  # .item() in the loop has synchronised the device
        times.append(time.perf_counter())

    start = time.perf_counter()
    path = train(config, bitext, "gpu-check-bitext", net, net, progress=False, plot=False, callback=record,
                 device=device)
    wall = time.perf_counter() - start
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    return losses, rate, wall, path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 layers, small vocabulary and data (CPU test)")
    parser.add_argument("--cpu-threads", type=int, default=2, help="torch threads of the CPU side (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the lines to this file")
    args = parser.parse_args()
    s = QUICK if args.quick else FULL
    lines: list[str] = []
    cuda = torch.cuda.is_available()
    say("torch", torch.__version__, lines)
    say("model", f"random BERT, {s['layers']} layers, hidden 384, {'small' if args.quick else '250037'} vocabulary",
        lines)
    say("cpu_threads", args.cpu_threads, lines)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        tmp = Path(tmp)
        ref = build_model(tmp / "model", s["layers"], s["words"], args.quick, args.seed)
        passages, queries, bitext = synthetic_text(s["words"], s["cuda_passages"] if cuda else s["passages"],
                                                   s["queries"], s["pairs"], args.seed)
        threads(args.cpu_threads)
        d_cpu, q_cpu, rate_cpu = encode(copy_of(ref, "cpu"), "cpu", passages[:s["passages"]], queries)
        say("encode_cpu_passages_per_s", rate_cpu, lines)
        losses_cpu, steps_cpu, _, _ = training(ref, bitext, s["cpu_steps"], "cpu", tmp / "home-cpu")
        say("train_cpu_steps_per_s", steps_cpu, lines)
        say(f"train_cpu_loss_step_{s['cpu_steps']}", losses_cpu[-1], lines)
        if not cuda:
            print("no CUDA device: GPU figures skipped", flush=True)
            lines.append("no CUDA device: GPU figures skipped")
        else:
            threads(None)
            say("cuda_device", torch.cuda.get_device_name(0), lines)
            if "device" not in inspect.signature(Encoder).parameters:
                say("encode_cuda", "skipped: bench's Encoder takes no device= (it runs on the CPU only)", lines)
            else:
                d_gpu, q_gpu, rate_gpu = encode(copy_of(ref, "cuda"), "cuda", passages, queries)
                n = s["passages"]
                cos = np.concatenate([cosines(d_cpu, d_gpu[:n]), cosines(q_cpu, q_gpu)])
                say("encode_cuda_passages_per_s", rate_gpu, lines)
                say("encode_cuda_speedup", rate_gpu / rate_cpu, lines)
                say("encode_cosine_cpu_cuda_min", float(cos.min()), lines)
                say("encode_cosine_cpu_cuda_mean", float(cos.mean()), lines)
                say("encode_top10_overlap", top10_overlap(q_cpu, d_cpu, q_gpu, d_gpu[:n]), lines)
            losses_gpu, _, _, _ = training(ref, bitext, s["cpu_steps"], "cuda", tmp / "home-cuda-short")
            diffs = [abs(a - b) / abs(a) for a, b in zip(losses_cpu, losses_gpu)]
            say(f"train_loss_rel_diff_step_{s['cpu_steps']}", diffs[-1], lines)
            say("train_loss_rel_diff_max", max(diffs), lines)
            _, steps_gpu, wall, path = training(ref, bitext, s["long_steps"], "cuda", tmp / "home-cuda-long")
            say("train_cuda_steps_per_s", steps_gpu, lines)
            say("train_cuda_speedup", steps_gpu / steps_cpu, lines)
            say(f"train_cuda_{s['long_steps']}_steps_s", wall, lines)
            student = load_student(path)
            on_cpu = all(t.device.type == "cpu" for t in student.model.state_dict().values())
            say("cuda_student_loads_on_cpu", "yes" if on_cpu else "no", lines)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
