"""Shared fixtures: a private BENCH_HOME per test, the offline mirror, no model hub."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = ROOT.parent / "shared" / "mirror"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if not os.environ.get("BENCH_MIRROR") and DEFAULT_MIRROR.is_dir():
    os.environ["BENCH_MIRROR"] = str(DEFAULT_MIRROR)
TEST_HOME = os.environ.get("BENCH_TEST_HOME")  # read once: the integration tests' shared cache, if one is given
KEPT_VARIABLES = ("BENCH_MIRROR",)  # the only BENCH_* variable of the shell a test sees


@pytest.fixture(autouse=True)
def no_bench_variables_left_set(monkeypatch, tmp_path_factory):
    """A test never sees the BENCH_* variables of the shell that started pytest (BENCH_HOME, BENCH_THREADS,
    BENCH_DEVICE, ...), the mirror's apart, and has a BENCH_HOME of its own unless it asks for one
    (:func:`bench_home`, :func:`real_data`): it never reads or writes the user's cache."""
    for name in [n for n in os.environ if n.startswith("BENCH_") and n not in KEPT_VARIABLES]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BENCH_HOME", str(tmp_path_factory.mktemp("bench-home-of-test")))


@pytest.fixture(autouse=True)
def logging_as_it_was():
    """A CLI call with -q or -v sets the root logger's level and the progress bars' switch for the whole
    process (module fixtures run CLI calls too): each test starts from Python's default level, WARNING, and
    bars on, whatever ran before it."""
    from bench.infra import progress

    logging.getLogger().setLevel(logging.WARNING)
    progress.quiet(False)
    yield
    logging.getLogger().setLevel(logging.WARNING)
    progress.quiet(False)


@pytest.fixture
def one_thread(monkeypatch):
    """Tiny models train faster on one thread on a shared machine; restore torch's setting afterwards."""
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("BENCH_THREADS", "1")
    yield
    torch.set_num_threads(before)


@pytest.fixture
def bench_home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty BENCH_HOME for one test."""
    from bench.data.collection import forget_loaded

    home = tmp_path / "bench-home"
    monkeypatch.setenv("BENCH_HOME", str(home))
    forget_loaded()
    return home


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory) -> Path:
    """One BENCH_HOME for the integration tests of a session, so indexes and embeddings are reused."""
    return Path(TEST_HOME or tmp_path_factory.mktemp("bench-home-shared"))


@pytest.fixture
def real_data(shared_home, monkeypatch) -> Path:
    """Integration tests read the mirrored public data through the store (skip only if it is absent)."""
    mirror = os.environ.get("BENCH_MIRROR")
    if not mirror or not Path(mirror).is_dir():
        pytest.skip("no mirror: set BENCH_MIRROR to run the integration tests")
    monkeypatch.setenv("BENCH_HOME", str(shared_home))
    return Path(mirror)
