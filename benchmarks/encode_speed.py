"""Encoding speed of bench against a plain transformers loop, and the time of a fully cached run.

    HF_HUB_OFFLINE=1 BENCH_MIRROR=../shared/mirror python benchmarks/encode_speed.py [--limit 400] [--runs] [--int8]\
        [--backends] [--budgets 512,1024]

1. The same AfriQA passages (a seeded sample of ``--limit``) are encoded, in the same process and
   with the same loaded model and thread count, by ``bench.methods.retrieve.dense.Encoder`` and by the plain
   loop below (the model card's recipe: batches of 32 in corpus order, pad to the longest, mean
   pooling, L2 norm), and by the same loop over the passages sorted by length (what is left is
   bench's own overhead). Prints passages/s of each and the ratios (higher is better for bench).
2. With ``--int8``: the same passages encoded by the fp32 ``Encoder`` and by the int8 one
   (``quantize="int8"``: torch dynamic quantisation of the linear layers), in the same process, in
   alternating rounds (``--rounds``, the best time of each kept: other load on the machine inflates a
   round, never deflates it); prints passages/s of each, their ratio and the cosines between the two.
3. With ``--backends`` (issue 23: faster CPU encoding at equal vectors): the same passages, tokenised once
   and cut into the same length-sorted batches bench uses, run through (a) the model as bench runs it
   (transformers' SDPA attention, its default), (b) the same weights with eager attention, (c) ONNX Runtime
   fp32 on the exported model with all graph optimisations, (d) ONNX Runtime after its BERT fusions
   (``onnxruntime.transformers.optimizer``), (e) OpenVINO fp32 as bench runs it with ``--cpu-runtime openvino``
   (:mod:`bench.infra.openvino_runtime`: converted from PyTorch, inference precision pinned to f32), (f)
   ``torch.compile`` (inductor) of the same model, in alternating rounds (the best of each kept, so (f)'s
   compilation in the first round does not count); prints passages/s, the ratio to (a) and the smallest cosine
   to (a)'s vectors. With ``--reference-tokens 8192``, also (a) at that budget, every row given against it too.
   Needs ``pip install onnx onnxruntime openvino`` (bench uses OpenVINO only with ``--cpu-runtime openvino``,
   never ONNX Runtime; a row whose package is absent is skipped with a line saying so).
4. With ``--budgets 512,1024,...``: bench's fp32 ``Encoder`` on the CPU with each padded-token budget per
   batch (``--batch-tokens``) against the default budget, in alternating rounds (the best of each kept);
   prints passages/s, the ratio to the default and the smallest cosine to the default's vectors.
5. With ``--runs``: ``bench run --pair sw-en --systems mdense`` twice in a fresh BENCH_HOME (the
   first converts the model and encodes the corpus, the second finds everything cached) and prints
   the ratio of their wall times.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from bench.infra import batching, devices, openvino_runtime

from bench.data import models
from bench.data.pairs import get_pair
from bench.errors import BenchError
from bench.methods.retrieve import dense


def plain_loop(model, tokenizer, texts: list[str], batch_size: int = 32, max_length: int = 512) -> np.ndarray:
    """The straightforward transformers recipe, written out here on purpose (no bench code)."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(["passage: " + t for t in texts[start:start + batch_size]], padding=True,
                              truncation=True, max_length=max_length, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out)


def encode_speed(limit: int, seed: int, model_spec: str) -> None:
    texts = sample_passages(limit, seed)
    encoder = dense.Encoder(models.resolve(model_spec))
    model, tokenizer = encoder.loaded
    torch.set_num_threads(batching.threads())
    encoder.encode(texts[:8], "doc")  # warm-up, for both
    t0 = time.perf_counter()
    plain = plain_loop(model, tokenizer, texts, max_length=encoder.max_length)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = encoder.encode(texts, "doc").vectors
    t_bench = time.perf_counter() - t0
    by_length = sorted(texts, key=lambda t: -len(tokenizer("passage: " + t, truncation=True)["input_ids"]))
    t0 = time.perf_counter()
    plain_loop(model, tokenizer, by_length, max_length=encoder.max_length)
    t_sorted = time.perf_counter() - t0
    agreement = float(np.min(np.sum(plain * ours, axis=1)))
    print(f"passages: {len(texts)}  threads: {batching.threads()}  model: {model_spec}")
    print(f"plain loop, corpus order:   {len(texts) / t_plain:6.2f} passages/s ({t_plain:.1f} s)")
    print(f"plain loop, sorted by length: {len(texts) / t_sorted:4.2f} passages/s ({t_sorted:.1f} s)")
    print(f"bench Encoder:              {len(texts) / t_bench:6.2f} passages/s ({t_bench:.1f} s)")
    print(f"ratio bench / plain loop:   {t_plain / t_bench:.3f}   (min cosine between the two: {agreement:.6f})")
    print(f"ratio bench / sorted plain: {t_sorted / t_bench:.3f}   (the harness's own overhead)")


def sample_passages(limit: int, seed: int) -> list[str]:
    passages = [d.default_text() for d in get_pair("sw-en").collection().iter_docs()]
    return random.Random(seed).sample(passages, min(limit, len(passages))) if limit else passages


def best_of_rounds(runs: dict, rounds: int) -> tuple[dict, dict]:
    """Each of ``runs`` (name: a callable returning vectors) is called once per round, in alternating rounds;
    returns the best seconds and the vectors of each (other load on the machine inflates a round, never deflates it)."""
    best, vectors = {}, {}
    for _ in range(rounds):
        for name, run in runs.items():
            t0 = time.perf_counter()
            vectors[name] = run()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
    return best, vectors


def encoder_rounds(encoders: dict, texts: list[str], rounds: int) -> tuple[dict, dict]:
    """:func:`best_of_rounds` of each of ``encoders`` encoding ``texts`` as documents, after a warm-up."""
    for enc in encoders.values():
        enc.encode(texts[:8], "doc")  # warm-up (and an int8 copy made)
    return best_of_rounds({name: lambda enc=enc: enc.encode(texts, "doc").vectors for name, enc in encoders.items()},
                          rounds)


def int8_speed(limit: int, seed: int, model_spec: str, rounds: int) -> None:
    texts = sample_passages(limit, seed)
    ref = models.resolve(model_spec)
    encoders = {"fp32": dense.Encoder(ref, device="cpu"), "int8": dense.Encoder(ref, device="cpu", quantize="int8")}
    best, vectors = encoder_rounds(encoders, texts, rounds)
    cos = np.sum(vectors["fp32"] * vectors["int8"], axis=1)
    print(f"passages: {len(texts)}  threads: {batching.threads()}  model: {model_spec}  rounds: {rounds}")
    for name in encoders:
        print(f"{name} Encoder: {len(texts) / best[name]:6.2f} passages/s (best {best[name]:.1f} s)")
    print(f"encode_int8_speedup: {best['fp32'] / best['int8']:.3f}")
    print(f"cosine fp32 vs int8: min {cos.min():.4f}  mean {cos.mean():.4f}")


def budget_speed(limit: int, seed: int, model_spec: str, rounds: int, budgets: list[int]) -> None:
    """bench's fp32 Encoder on the CPU at each padded-token budget per batch (``--batch-tokens``), against
    the default budget (:data:`bench.infra.devices.CPU_BATCH_TOKENS`) in the same process."""
    texts = sample_passages(limit, seed)
    ref = models.resolve(model_spec)
    base = f"{devices.CPU_BATCH_TOKENS} tokens (default)"
    encoders = {base: dense.Encoder(ref, device="cpu")}
    encoders.update({f"{b} tokens": dense.Encoder(ref, device="cpu", batch_tokens=b)
                     for b in budgets if b != devices.CPU_BATCH_TOKENS})
    best, vectors = encoder_rounds(encoders, texts, rounds)
    print(f"passages: {len(texts)}  threads: {batching.threads()}  model: {model_spec}  rounds: {rounds}")
    for name in encoders:
        cos = float(np.min(np.sum(vectors[base] * vectors[name], axis=1)))
        print(f"{name:24s} {len(texts) / best[name]:6.2f} passages/s  ratio to the default: "
              f"{best[base] / best[name]:.3f}  min cosine: {cos:.7f}")


def backend_speed(limit: int, seed: int, model_spec: str, rounds: int, reference_tokens: int | None = None) -> None:
    """The backends of the module docstring's item 3 at bench's padded-token budget; with ``reference_tokens``,
    also bench's torch path at that budget (the issue's baseline, e.g. 8,192 before issue 23), every row then
    given as a ratio to it as well."""
    import copy

    texts = sample_passages(limit, seed)
    encoder = dense.Encoder(models.resolve(model_spec), device="cpu")
    model, tokenizer = encoder.loaded
    torch.set_num_threads(batching.threads())
    ids = tokenizer([encoder.prefix("doc") + t for t in texts], truncation=True, max_length=encoder.max_length,
                    return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def batches_of(budget: int) -> list:
        return [(rows, *batching.pad_batch(ids, rows, pad))
                for rows in batching.length_batches([len(x) for x in ids], budget, encoder.max_batch)]

    batches = batches_of(encoder.batch_tokens)
    eager = copy.deepcopy(model)
    eager.config._attn_implementation = "eager"  # the same weights, attention computed step by step

    def pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        weights = mask[..., None].astype(np.float32)
        vectors = (hidden * weights).sum(1) / weights.sum(1)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def run_torch(net, cut: list = batches) -> np.ndarray:
        out = np.zeros((len(texts), net.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for rows, input_ids, mask in cut:
                out[rows] = pooled(net(input_ids=input_ids, attention_mask=mask).last_hidden_state.numpy(),
                                   mask.numpy())
        return out

    backends = {"torch sdpa (bench)": lambda: run_torch(model), "torch eager": lambda: run_torch(eager)}
    backends.update(onnx_backends(model, batches, len(texts), pooled))
    backends.update(openvino_backend(model, batches, len(texts), pooled))
    backends["torch.compile (inductor)"] = compiled_runner(model, run_torch)
    reference = f"torch sdpa, {reference_tokens} tokens"
    if reference_tokens:
        backends[reference] = lambda cut=batches_of(reference_tokens): run_torch(model, cut)
    best, vectors = best_of_rounds(backends, rounds)
    base = next(iter(backends))
    print(f"passages: {len(texts)}  threads: {batching.threads()}  model: {model_spec}  rounds: {rounds}  "
          f"budget: {encoder.batch_tokens} tokens")
    for name in backends:
        cos = float(np.min(np.sum(vectors[base] * vectors[name], axis=1)))
        against = f"  ratio to {reference}: {best[reference] / best[name]:.3f}" if reference_tokens else ""
        print(f"{name:26s} {len(texts) / best[name]:6.2f} passages/s  ratio to {base}: {best[base] / best[name]:.3f}"
              f"{against}  min cosine: {cos:.7f}")


def onnx_backends(model, batches, n: int, pooled) -> dict:
    """ONNX Runtime fp32 of ``model`` exported once (opset 17, dynamic batch and length), plain and with the
    BERT fusions of onnxruntime.transformers; empty (with a line saying so) when onnx/onnxruntime are absent."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: pip install onnx onnxruntime (the ONNX rows are skipped)")
        return {}

    folder = tempfile.mkdtemp(prefix="bench-onnx-")
    exported = os.path.join(folder, "model.onnx")
    _, input_ids, mask = batches[0]
    dynamic = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
               "hidden": {0: "batch", 1: "length"}}
    torch.onnx.export(openvino_runtime.last_hidden(model), (input_ids, mask), exported, opset_version=17,
                      dynamo=False, input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                      dynamic_axes=dynamic)
    files = {"onnxruntime fp32": exported}
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        fused = optimize_model(exported, model_type="bert", num_heads=model.config.num_attention_heads,
                               hidden_size=model.config.hidden_size)
        files["onnxruntime fp32 fused"] = os.path.join(folder, "fused.onnx")
        fused.save_model_to_file(files["onnxruntime fp32 fused"])
    except Exception as exc:  # the optimizer is optional; say why its row is missing
        print(f"onnxruntime's BERT optimizer failed ({type(exc).__name__}: {exc}); its row is skipped")

    def session_runner(path: str):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = batching.threads()
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

        def run() -> np.ndarray:
            out = np.zeros((n, model.config.hidden_size), dtype=np.float32)
            for rows, ids, attention in batches:
                hidden = session.run(["hidden"], {"input_ids": ids.numpy(), "attention_mask": attention.numpy()})[0]
                out[rows] = pooled(hidden, attention.numpy())
            return out

        return run

    return {name: session_runner(path) for name, path in files.items()}


def openvino_backend(model, batches, n: int, pooled) -> dict:
    """bench's OpenVINO path (:mod:`bench.infra.openvino_runtime`: fp32, converted from PyTorch once with dynamic
    batch and length); empty when openvino is absent."""
    try:
        run_batch = openvino_runtime.forward(model, batching.threads())
    except BenchError as exc:
        print(f"{exc} (its row is skipped)")
        return {}

    def run() -> np.ndarray:
        out = np.zeros((n, model.config.hidden_size), dtype=np.float32)
        for rows, ids, attention in batches:
            out[rows] = pooled(run_batch(ids, attention).numpy(), attention.numpy())
        return out

    return {"openvino fp32": run}


def compiled_runner(model, run_torch):
    """``run_torch`` over ``torch.compile(model, dynamic=True)`` (inductor: fused CPU kernels, one graph for every
    batch shape); the first round includes the compilation, so only later rounds count (the best is kept)."""
    compiled = torch.compile(model, dynamic=True)
    compiled.config = model.config
    return lambda: run_torch(compiled)


def cached_run_ratio(home: str | None) -> None:
    env = dict(os.environ, BENCH_HOME=home or tempfile.mkdtemp(prefix="bench-home-cold-"))
    runs = tempfile.mkdtemp(prefix="bench-runs-")
    cmd = ["bench", "run", "--pair", "sw-en", "--systems", "mdense", "--no-report", "--runs", runs]
    times = []
    for attempt in ("first", "second"):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True)
        times.append(time.perf_counter() - t0)
        print(f"{attempt} `{' '.join(cmd[:6])}`: {times[-1]:.1f} s (BENCH_HOME={env['BENCH_HOME']})", flush=True)
    print(f"ratio second / first: {times[1] / times[0]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=400, help="passages to encode (0: the whole corpus)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--runs", action="store_true", help="also time a first and a cached second bench run")
    parser.add_argument("--home", help="BENCH_HOME for --runs (default: a fresh temporary directory)")
    parser.add_argument("--skip-encode", action="store_true", help="skip the bench-vs-plain-loop comparison")
    parser.add_argument("--int8", action="store_true", help="also compare the fp32 and int8 encoders")
    parser.add_argument("--backends", action="store_true",
                        help="also compare torch SDPA, eager attention, ONNX Runtime, OpenVINO and torch.compile")
    parser.add_argument("--reference-tokens", type=int,
                        help="with --backends, also bench's torch path at this padded-token budget (e.g. 8192)")
    parser.add_argument("--budgets", help="also compare padded-token budgets per CPU batch, e.g. 512,1024,2048")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of --int8, --backends, --budgets")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not args.skip_encode:
        encode_speed(args.limit, args.seed, args.model)
    if args.int8:
        int8_speed(args.limit, args.seed, args.model, args.rounds)
    if args.backends:
        backend_speed(args.limit, args.seed, args.model, args.rounds, args.reference_tokens)
    if args.budgets:
        budget_speed(args.limit, args.seed, args.model, args.rounds, [int(b) for b in args.budgets.split(",")])
    if args.runs:
        cached_run_ratio(args.home)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
