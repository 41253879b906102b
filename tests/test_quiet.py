"""Quiet where it should be (issues 25, 26): what the libraries print on their own (Java on file descriptors 1
and 2, transformers' "Loading weights" bars, Ray's workers) stays off the terminal unless --debug, and a
chunked encoding has one progress bar."""

from __future__ import annotations

import logging
import os
import sys
import types

import pytest

from bench.infra import library_output, progress


@pytest.fixture
def debug_off():
    """Start with --debug off; leave it off whatever the test set."""
    library_output.show(False)
    yield
    library_output.show(False)


def test_what_is_printed_on_the_descriptors_is_captured_unless_debug(debug_off, capfd, caplog):
    print("bench's own line", flush=True)
    output = library_output.Captured()
    with caplog.at_level(logging.DEBUG, logger="bench.infra.library_output"):
        with library_output.captured(output, "Java"):
            os.write(1, b"ERROR [main] index.SimpleIndexer - No space left on device\n")
            os.write(2, b"Exception in thread main\n")
    assert output.text == "ERROR [main] index.SimpleIndexer - No space left on device\nException in thread main\n"
    assert capfd.readouterr() == ("bench's own line\n", "")
    assert [r.getMessage() for r in caplog.records] == [
        "Java output: ERROR [main] index.SimpleIndexer - No space left on device\nException in thread main"]

    library_output.show(True)  # --debug: captured still (a cause is read from it), and printed where it was going
    shown = library_output.Captured()
    with library_output.captured(shown, "Java"):
        os.write(1, b"to stdout\n")
        os.write(2, b"to stderr\n")
    assert shown.text == "to stdout\nto stderr\n"
    assert capfd.readouterr() == ("to stdout\n", "to stderr\n")


def test_a_captured_block_that_fails_restores_the_descriptors(debug_off, capfd):
    output = library_output.Captured()
    with pytest.raises(RuntimeError, match="java"):
        with library_output.captured(output):
            os.write(2, b"trace line\n")
            raise RuntimeError("java")
    os.write(2, b"after\n")
    assert output.text == "trace line\n" and capfd.readouterr().err == "after\n"


def test_captured_output_keeps_its_end():
    output = library_output.Captured()
    output.add("x" * library_output.KEEP_CHARS)
    output.add("the cause\n")
    assert output.text == "x" * (library_output.KEEP_CHARS - len("the cause\n")) + "the cause\n"


@pytest.fixture
def transformers_bars():
    """transformers' own bars on (as on a terminal), and its hook restored afterwards."""
    from transformers.utils import logging as transformers_logging

    was_on = transformers_logging.is_progress_bar_enabled()
    previous = transformers_logging.set_tqdm_hook(None)
    transformers_logging.enable_progress_bar()
    yield
    transformers_logging.set_tqdm_hook(previous)
    if not was_on:
        transformers_logging.disable_progress_bar()


def test_loading_a_model_draws_no_loading_weights_bar_unless_debug(debug_off, transformers_bars, bench_home, tmp_path,
                                                                  capfd):
    from bench.data import models
    from test_dense import write_tiny_model

    ref = models.resolve(str(write_tiny_model(tmp_path / "tiny")))
    models._load.cache_clear()
    models.load(ref)
    assert "Loading weights" not in capfd.readouterr().err

    library_output.show(True)
    models._load.cache_clear()
    models.load(ref)
    assert "Loading weights" in capfd.readouterr().err  # the bar this test would miss, were it never drawn
    models._load.cache_clear()


class _FakeRay(types.ModuleType):
    """What grid_exec's _init_ray calls of Ray, recording how Ray was started."""

    def __init__(self, session: str):
        super().__init__("ray")
        self.session, self.started = session, []

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        self.started.append(kwargs)
        return types.SimpleNamespace(address_info={"session_dir": self.session})


@pytest.mark.parametrize("debug", [False, True])
def test_ray_workers_print_to_their_log_files_unless_debug(debug_off, monkeypatch, tmp_path, debug):
    """Issue 26: `bench grid --ray local` printed every worker's log lines and Ray's token warning; the workers'
    output stays in Ray's log directory, which the grid names, and Ray's own logging says errors only."""
    from bench.experiment import grid_exec

    fake = _FakeRay(str(tmp_path / "session"))
    monkeypatch.setitem(sys.modules, "ray", fake)
    library_output.show(debug)
    logs = grid_exec._init_ray("local", 2, {"BENCH_HOME": "x"})
    assert logs == tmp_path / "session" / "logs"
    assert fake.started == [{"num_cpus": 2, "include_dashboard": False, "log_to_driver": debug,
                             "runtime_env": {"env_vars": {"BENCH_HOME": "x"}},
                             "logging_level": logging.WARNING if debug else logging.ERROR}]


def test_a_chunked_encoding_has_one_progress_bar(bench_home, tmp_path, monkeypatch, capfd):
    """Issue 26: a corpus encoded in chunks restarted its bar for each chunk (no overall rate or ETA): one bar
    counts every document of every chunk."""
    from bench.data import models
    from bench.data.collection import Doc
    from bench.methods.retrieve import encodings
    from bench.methods.retrieve.encoder import Encoder
    from test_dense import TinyCollection, write_tiny_model

    docs = [Doc(f"d{i}", "", " ".join(["the river nile flows north"] * (1 + i % 3))) for i in range(300)]
    enc = Encoder(models.resolve(str(write_tiny_model(tmp_path / "tiny"))), batch_tokens=512, max_batch=16)
    monkeypatch.setattr(encodings, "CHUNK_TOKENS", 2048)  # many chunks
    calls, bars = [], []
    real_encode, real_bar = Encoder.encode, progress.bar

    def encode(self, *args, **kwargs):
        calls.append(len(args[0]))
        return real_encode(self, *args, **kwargs)

    def bar(*args, **kwargs):
        bars.append(real_bar(*args, **kwargs))
        return bars[-1]

    monkeypatch.setattr(Encoder, "encode", encode)
    monkeypatch.setattr(progress, "shown", lambda: True)  # as on a terminal
    monkeypatch.setattr(progress, "bar", bar)
    encodings.doc_vectors(enc, TinyCollection(docs, []))
    assert len(calls) >= 2 and sum(calls) == 300  # the chunks
    assert [(b.desc, b.total, b.n) for b in bars] == [(f"encoding documents ({enc.ref.name})", 300, 300)]


def test_a_stop_said_while_output_is_captured_reaches_the_terminal(debug_off, capfd):
    """The watchdog's one line (written straight to a descriptor) goes where stderr went before the block."""
    output = library_output.Captured()
    with library_output.captured(output):
        os.write(library_output.terminal_stderr(), b"interrupted (SIGTERM)\n")
        os.write(2, b"java\n")
    assert output.text == "java\n" and capfd.readouterr().err == "interrupted (SIGTERM)\n"
    assert library_output.terminal_stderr() == 2
