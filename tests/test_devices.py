"""Devices: `auto` is the CPU here; bf16 autocast never on the CPU; bad specs are one line."""

import pytest
import torch

from bench import devices
from bench.errors import BenchError


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
        with pytest.raises(BenchError, match="torch sees no CUDA GPU"):
            devices.resolve("cuda:0")


def test_no_bf16_autocast_on_the_cpu():
    assert devices.bf16_autocast("cpu") is False
