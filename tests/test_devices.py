"""Devices and precision: `auto` is the CPU here, bf16 autocast never on the CPU unless forced, int8
encoders, batch sizes per device, --device / --batch-tokens on the command line, the manifest's record.

There is no GPU on the machines these tests run on: the device plumbing is tested with ``cpu`` given
explicitly against ``auto`` and ``BENCH_DEVICE``, and the CUDA precision (bf16 autocast) by forcing
the autocast path on the CPU, with a tiny random model.
"""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from bench.infra import devices

from bench.data import models
from bench.data.collection import Doc
from bench.errors import BenchError
from bench.systems.options import RunOptions
from bench.methods.retrieve import dense, encodings
from bench.methods.retrieve import encoder as encoder_module
from bench.infra.store import artifact_dir
from cli_run import run_main
from test_dense import WORDS, TinyCollection, write_tiny_model


def test_auto_and_cpu(monkeypatch):
    monkeypatch.delenv("BENCH_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert devices.resolve("auto").type == expected and devices.resolve().type == expected
    assert devices.resolve("cpu") == torch.device("cpu")
    monkeypatch.setenv("BENCH_DEVICE", "cpu")
    assert devices.resolve() == torch.device("cpu")


def test_bad_devices_are_refused():
    with pytest.raises(BenchError, match="unknown device 'gpu0'"):
        devices.resolve("gpu0")
    if not torch.cuda.is_available():
        for spec in ("cuda", "cuda:0"):
            with pytest.raises(BenchError, match="torch sees no CUDA GPU") as err:
                devices.resolve(spec)
            assert "\n" not in str(err.value) and str(err.value).startswith(f"device {spec} asked for")


def test_no_bf16_autocast_on_the_cpu():
    assert devices.bf16_autocast("cpu") is False


def test_batch_sizes_and_description_on_the_cpu(monkeypatch):
    monkeypatch.delenv("BENCH_BATCH_TOKENS", raising=False)
    assert devices.batch_tokens("cpu") == 2048 and devices.max_batch("cpu") == 64
    monkeypatch.setenv("BENCH_BATCH_TOKENS", "8192")
    assert devices.batch_tokens("cpu") == 8192
    monkeypatch.setenv("BENCH_BATCH_TOKENS", "lots")
    with pytest.raises(BenchError, match="BENCH_BATCH_TOKENS must be a positive integer, not 'lots'"):
        devices.batch_tokens("cpu")
    monkeypatch.setenv("BENCH_THREADS", "3")
    assert devices.describe("cpu") == {"device": "cpu", "dtype": "fp32", "torch": torch.__version__, "threads": 3}
    assert devices.describe("cpu", "int8")["dtype"] == "int8-dynamic"


# --- encoders on a device, in bf16, in int8 ---------------------------------------------------------------


@pytest.fixture
def tiny_ref(bench_home, tmp_path) -> models.ModelRef:
    ref = models.resolve(str(write_tiny_model(tmp_path / "tiny")))
    return replace(ref, conventions=models.Conventions(query_prefix="query: ", doc_prefix="passage: ", max_length=64))


def tiny_corpus(seed: int = 0, n_docs: int = 60, n_queries: int = 12):
    """Seeded texts over the tiny model's vocabulary: documents of 4-14 words, queries of 2-5."""
    rng = np.random.default_rng(seed)
    words = WORDS[3:]  # not the prefix words
    docs = [" ".join(rng.choice(words, size=int(rng.integers(4, 15)))) for _ in range(n_docs)]
    queries = [" ".join(rng.choice(words, size=int(rng.integers(2, 6)))) for _ in range(n_queries)]
    return docs, queries


def top10(encoder: dense.Encoder, docs, queries) -> tuple[dense.Encoded, dense.Encoded, dict]:
    d, q = encoder.encode(docs, "doc", token_states=True), encoder.encode(queries, "query")
    run = dense.search([f"q{i}" for i in range(len(queries))], q.vectors, [f"d{i}" for i in range(len(docs))],
                       d.vectors, depth=10)
    return d, q, {qid: list(ranked) for qid, ranked in run.items()}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_cpu_given_explicitly_auto_and_the_environment_encode_identically(tiny_ref, monkeypatch):
    docs, queries = tiny_corpus()
    monkeypatch.delenv("BENCH_DEVICE", raising=False)
    auto = top10(dense.Encoder(tiny_ref), docs, queries)
    explicit = top10(dense.Encoder(tiny_ref, device="cpu"), docs, queries)
    monkeypatch.setenv("BENCH_DEVICE", "cpu")
    from_env = top10(dense.Encoder(tiny_ref), docs, queries)
    if not torch.cuda.is_available():  # the variable is read: naming a device the machine lacks is refused
        monkeypatch.setenv("BENCH_DEVICE", "cuda")
        with pytest.raises(BenchError, match="CUDA"):
            dense.Encoder(tiny_ref).device
        monkeypatch.setenv("BENCH_DEVICE", "cpu")
    for other in (explicit, from_env):
        assert np.array_equal(auto[0].vectors, other[0].vectors) and np.array_equal(auto[0].states, other[0].states)
        assert np.array_equal(auto[1].vectors, other[1].vectors) and auto[2] == other[2]
    assert auto[0].vectors.dtype == np.float32 and auto[0].states.dtype == np.float16
    assert dense.Encoder(tiny_ref).key("doc") == dense.Encoder(tiny_ref, device="cpu").key("doc")  # device: no identity


def test_the_bf16_autocast_path_agrees_with_fp32(tiny_ref):
    """What CUDA runs (bf16 autocast, pooling in float32), forced on the CPU: the same vectors to a cosine
    above 0.99 and the same top 10 of every query."""
    docs, queries = tiny_corpus()
    fp32 = top10(dense.Encoder(tiny_ref, device="cpu"), docs, queries)
    bf16_encoder = dense.Encoder(tiny_ref, device="cpu", bf16=True)
    assert bf16_encoder.autocast and not dense.Encoder(tiny_ref, device="cpu").autocast
    bf16 = top10(bf16_encoder, docs, queries)
    assert bf16[0].vectors.dtype == np.float32 and not np.array_equal(fp32[0].vectors, bf16[0].vectors)
    assert cosines(fp32[0].vectors, bf16[0].vectors).min() > 0.99
    assert cosines(fp32[1].vectors, bf16[1].vectors).min() > 0.99
    assert np.array_equal(fp32[0].offsets, bf16[0].offsets)
    assert cosines(fp32[0].states.astype(np.float32), bf16[0].states.astype(np.float32)).min() > 0.99
    assert bf16[2] == fp32[2] and all(len(r) == 10 for r in fp32[2].values())
    assert bf16_encoder.key("doc") == dense.Encoder(tiny_ref).key("doc")  # a GPU-encoded corpus is shared


def test_int8_encoders_agree_with_fp32_and_are_cached_apart(tiny_ref):
    docs, queries = tiny_corpus()
    fp32, int8 = dense.Encoder(tiny_ref), dense.Encoder(tiny_ref, quantize="int8")
    a, b = fp32.encode(docs, "doc"), int8.encode(docs, "doc")
    assert b.vectors.dtype == np.float32 and not np.array_equal(a.vectors, b.vectors)
    assert cosines(a.vectors, b.vectors).min() > 0.95
    model, _ = int8.loaded
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    quantized = [m for m in model.modules() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__]
    assert linear == [] and len(quantized) == 24  # 4 layers x (q, k, v, attention out, intermediate, out)
    assert any(isinstance(m, torch.nn.Linear) for m in models.load(tiny_ref)[0].modules())  # the shared one is fp32
    assert int8.key("doc") == {**fp32.key("doc"), "quantize": "torch-dynamic-qint8-per-channel-linear"}
    assert "quantize" not in fp32.key("doc")  # fp32 keys are those of before
    collection = TinyCollection([Doc(f"d{i}", "", t) for i, t in enumerate(docs)], [])
    cached32, cached8 = encodings.doc_vectors(fp32, collection), encodings.doc_vectors(int8, collection)
    assert np.array_equal(cached8.vectors, b.vectors) and np.array_equal(cached32.vectors, a.vectors)
    assert artifact_dir("dense-docs", encodings._doc_key(fp32, collection, "dense-doc-vectors")) != \
        artifact_dir("dense-docs", encodings._doc_key(int8, collection, "dense-doc-vectors"))


def test_int8_leaves_the_named_linear_layers_in_fp32(tiny_ref):
    model, _ = models.load(tiny_ref)
    keep = ["encoder.layer.0.output.dense", "encoder.layer.2.attention.self.query"]
    mixed = encoder_module.quantize_int8(model, fp32_layers=keep)
    modules = dict(mixed.named_modules())
    assert all(type(modules[name]) is torch.nn.Linear for name in keep)  # left as they were: float32 weights
    assert torch.equal(modules[keep[0]].weight, dict(model.named_modules())[keep[0]].weight)
    quantized = [n for n, m in modules.items() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__]
    assert len(quantized) == 22 and not set(keep) & set(quantized)  # 24 linear layers, two left in fp32
    every = encoder_module.quantize_int8(model, fp32_layers=[n for n, m in model.named_modules()
                                                             if isinstance(m, torch.nn.Linear)])
    assert not any("quantized" in type(m).__module__ for m in every.modules())
    for name, param in every.named_parameters():  # nothing quantised: the same weights, so the same vectors
        assert torch.equal(param, dict(model.named_parameters())[name])
    with pytest.raises(BenchError, match="no linear layer named 'encoder.layer.9.output.dense'"):
        encoder_module.quantize_int8(model, fp32_layers=["encoder.layer.9.output.dense"])


def test_the_quantize_option(tiny_ref, monkeypatch):
    assert RunOptions.from_mapping({"quantize": "int8"}).quantize == "int8" and RunOptions().quantize is None
    with pytest.raises(BenchError) as err:
        RunOptions.from_mapping({"quantize": "int4"})
    assert str(err.value) == "option quantize must be int8 or unset, not 'int4' (e.g. --quantize int8)"
    with pytest.raises(BenchError, match="unknown quantisation 'int4'"):
        dense.Encoder(tiny_ref, quantize="int4")
    monkeypatch.setattr(encoder_module, "_ENCODERS", {})
    spec = str(tiny_ref.path)
    plain, int8 = encoder_module.encoder(spec), encoder_module.encoder(spec, None, "int8")
    assert plain is encoder_module.encoder(spec) and int8 is encoder_module.encoder(spec, None, "int8")
    assert plain is not int8 and (plain.quantize, int8.quantize) == (None, "int8")
    from bench.systems import get_system

    for name in ("mdense", "mdense-maxsim", "oracle-dense", "nmt-dense", "optical", "sdistill-maxsim"):
        assert "quantize" in get_system(name).reads
    assert "quantize" not in get_system("bm25").reads


# --- OpenVINO on the CPU (--cpu-runtime openvino) ----------------------------------------------------------


def openvino_version() -> str:
    import openvino

    return openvino.get_version().split("-")[0]


def test_the_cpu_runtime_setting(monkeypatch):
    monkeypatch.delenv("BENCH_CPU_RUNTIME", raising=False)
    assert devices.cpu_runtime("cpu") == "torch" and "runtime" not in devices.describe("cpu")
    monkeypatch.setenv("BENCH_CPU_RUNTIME", "openvino")
    assert devices.cpu_runtime("cpu") == "openvino"
    monkeypatch.setenv("BENCH_THREADS", "1")
    assert devices.describe("cpu") == {"device": "cpu", "dtype": "fp32", "torch": torch.__version__, "threads": 1,
                                       "runtime": f"openvino {openvino_version()}"}
    assert devices.cpu_runtime("cpu", "int8") == "torch"  # int8 is torch's dynamic quantisation
    assert "runtime" not in devices.describe("cpu", "int8")
    monkeypatch.setenv("BENCH_CPU_RUNTIME", "onnx")
    with pytest.raises(BenchError) as err:
        devices.cpu_runtime("cpu")
    assert str(err.value) == ("BENCH_CPU_RUNTIME='onnx' is not valid: it must be torch or openvino (what runs the "
                              "encoders on the CPU) (fix or unset BENCH_CPU_RUNTIME)")


def test_openvino_encodes_as_torch_does(tiny_ref, monkeypatch):
    """The same texts through torch and through OpenVINO fp32: vectors and token states equal to float rounding,
    the same top 10 of every query, the same cache key (an execution setting shares the caches)."""
    from bench.infra import batching, openvino_runtime

    docs, queries = tiny_corpus()
    monkeypatch.delenv("BENCH_CPU_RUNTIME", raising=False)
    plain = top10(dense.Encoder(tiny_ref, device="cpu"), docs, queries)
    monkeypatch.setenv("BENCH_CPU_RUNTIME", "openvino")
    monkeypatch.setattr(openvino_runtime, "_COMPILED", {})
    encoder = dense.Encoder(tiny_ref, device="cpu")
    assert encoder.runtime == "openvino" and dense.Encoder(tiny_ref, quantize="int8").runtime == "torch"
    through = top10(encoder, docs, queries)
    assert list(openvino_runtime._COMPILED) == [(id(models.load(tiny_ref)[0]), batching.threads())]  # it ran there
    for side in (0, 1):
        assert through[side].vectors.dtype == np.float32
        assert np.abs(plain[side].vectors - through[side].vectors).max() < 1e-5
        assert cosines(plain[side].vectors, through[side].vectors).min() > 0.99999
    assert np.array_equal(plain[0].offsets, through[0].offsets)
    assert np.abs(plain[0].states.astype(np.float32) - through[0].states.astype(np.float32)).max() < 2e-3
    assert through[2] == plain[2] and all(len(r) == 10 for r in plain[2].values())
    assert encoder.key("doc") == dense.Encoder(tiny_ref).key("doc")


# --- the command line and the manifest ---------------------------------------------------------------


PAIR = "tests/data/tiny-pair/pair.yaml"


def test_a_device_this_machine_lacks_is_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys, bench_home):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    runs = tmp_path / "runs"
    args = ["run", "--pair-file", PAIR, "--systems", "bm25", "--runs", str(runs), "--reports", str(tmp_path / "rep")]
    code, out, err = run_main(monkeypatch, capsys, *args, "--device", "cuda")
    assert code == 2 and out == ""
    assert (err.strip().splitlines() == [err.strip()]
            and err.startswith("error: device cuda asked for, but torch sees no"))
    monkeypatch.setenv("BENCH_DEVICE", "cuda:1")
    code, _, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and err.startswith("error: device cuda:1 asked for") and len(err.strip().splitlines()) == 1
    code, _, err = run_main(monkeypatch, capsys, "train", "mt", "--pair", "sw-en", "--device", "tpu")
    assert code == 2 and err.strip() == "error: unknown device 'tpu' (use auto, cpu, cuda or cuda:N)"
    assert not runs.exists() and not (tmp_path / "rep").exists() and not bench_home.exists()


def test_device_flags_are_set_for_the_command_and_recorded_in_the_manifest(tmp_path, monkeypatch, capsys, bench_home):
    monkeypatch.delenv("BENCH_DEVICE", raising=False)
    monkeypatch.delenv("BENCH_BATCH_TOKENS", raising=False)
    monkeypatch.setenv("BENCH_THREADS", "2")
    code, out, err = run_main(monkeypatch, capsys, "-q", "run", "--pair-file", PAIR, "--systems", "bm25", "--runs",
                              str(tmp_path / "runs"), "--no-report", "--device", "cpu", "--batch-tokens", "4096")
    assert code == 0, err
    manifest = json.loads((tmp_path / "runs" / "xx-en" / "bm25" / "manifest.json").read_text())
    assert manifest["execution"] == {"device": "cpu", "dtype": "fp32", "torch": torch.__version__, "threads": 2,
                                     "batch_tokens": 4096, "quantize": None}
    import os

    assert "BENCH_DEVICE" not in os.environ and "BENCH_BATCH_TOKENS" not in os.environ  # restored after the command


def test_int8_is_recorded_for_a_dense_system(tiny_ref, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BENCH_DEVICE", raising=False)
    monkeypatch.setattr(encoder_module, "_ENCODERS", {})
    monkeypatch.setenv("BENCH_THREADS", "1")
    spec = str(tiny_ref.path)
    monkeypatch.setitem(encoder_module._ENCODERS, (spec, None, "int8"), dense.Encoder(tiny_ref, quantize="int8"))
    code, out, err = run_main(monkeypatch, capsys, "-q", "run", "--pair-file", PAIR, "--systems", "mdense", "--runs",
                              str(tmp_path / "runs"), "--no-report", "--encoder", spec, "--quantize", "int8")
    assert code == 0, err
    manifest = json.loads((tmp_path / "runs" / "xx-en" / "mdense" / "manifest.json").read_text())
    assert manifest["execution"] == {"device": "cpu", "dtype": "int8-dynamic", "torch": torch.__version__,
                                     "threads": 1, "batch_tokens": 2048, "quantize": "int8"}
    assert manifest["spec"]["quantize"] == "int8" and manifest["options"]["quantize"] == "int8"


def test_openvino_asked_for_and_absent_is_one_line_and_nothing_is_written(tmp_path, monkeypatch, capsys, bench_home):
    import sys

    from bench.infra import openvino_runtime

    monkeypatch.setitem(sys.modules, "openvino", None)  # what an install without the extra sees: ImportError
    runs = tmp_path / "runs"
    code, out, err = run_main(monkeypatch, capsys, "run", "--pair-file", PAIR, "--systems", "mdense", "--runs",
                              str(runs), "--reports", str(tmp_path / "rep"), "--cpu-runtime", "openvino")
    assert code == 2 and out == ""
    assert err.strip() == ("error: --cpu-runtime openvino asked for, but OpenVINO is not installed "
                           f"({openvino_runtime.INSTALL_HINT})")
    monkeypatch.setenv("BENCH_CPU_RUNTIME", "openvino")  # the variable alone: the same line, before anything runs
    code, _, err2 = run_main(monkeypatch, capsys, "run", "--pair-file", PAIR, "--systems", "mdense",
                             "--runs", str(runs))
    assert code == 2 and err2 == err
    monkeypatch.delenv("BENCH_CPU_RUNTIME")
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", PAIR, "--cpu-runtime", "onnx")
    assert code == 2 and "Invalid value for '--cpu-runtime': 'onnx' is not one of 'torch', 'openvino'" in err
    assert not runs.exists() and not (tmp_path / "rep").exists() and not bench_home.exists()


def test_a_dense_run_through_openvino_scores_as_torch_and_records_it(tiny_ref, tmp_path, monkeypatch, capsys):
    """mdense on the tiny pair, once in torch and once through OpenVINO, each from its own empty BENCH_HOME (so
    nothing encoded is shared): the same AP for every query, and the runtime in the second run's manifest."""
    monkeypatch.delenv("BENCH_DEVICE", raising=False)
    monkeypatch.delenv("BENCH_CPU_RUNTIME", raising=False)
    monkeypatch.setenv("BENCH_THREADS", "1")
    spec, ap = str(tiny_ref.path), {}
    for runtime in ("torch", "openvino"):
        monkeypatch.setenv("BENCH_HOME", str(tmp_path / f"home-{runtime}"))
        monkeypatch.setattr(encoder_module, "_ENCODERS", {})
        runs = tmp_path / f"runs-{runtime}"
        code, out, err = run_main(monkeypatch, capsys, "-q", "run", "--pair-file", PAIR, "--systems", "mdense",
                                  "--runs", str(runs), "--no-report", "--encoder", spec, "--cpu-runtime", runtime)
        assert code == 0, err
        manifest = json.loads((runs / "xx-en" / "mdense" / "manifest.json").read_text())
        ap[runtime] = pd.read_csv(runs / "xx-en" / "mdense" / "perquery.csv").query("measure == 'AP'")
        expected = {"device": "cpu", "dtype": "fp32", "torch": torch.__version__, "threads": 1, "batch_tokens": 2048,
                    "quantize": None}
        if runtime == "openvino":
            expected["runtime"] = f"openvino {openvino_version()}"
        assert manifest["execution"] == expected
    assert len(ap["torch"]) > 1 and ap["torch"]["query_id"].tolist() == ap["openvino"]["query_id"].tolist()
    assert np.allclose(ap["torch"]["value"], ap["openvino"]["value"], atol=1e-9)
