
import pytest

from bench.infra import store


def test_atomic_dir_leaves_nothing_when_the_build_fails(tmp_path):
    target = tmp_path / "artifact"
    with pytest.raises(RuntimeError):
        with store.atomic_dir(target) as tmp:
            (tmp / "half").write_text("half-written")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_a_build_leaves_nothing(tmp_path):
    """`bench` turns SIGTERM into an interrupt, so a killed build removes its temporary directory."""
    import os
    import signal

    from bench.infra import interrupts

    try:
        interrupts.install()  # what `bench` does first
        with pytest.raises(KeyboardInterrupt):
            with store.atomic_dir(tmp_path / "artifact") as tmp:
                (tmp / "half.bin").write_text("half")
                os.kill(os.getpid(), signal.SIGTERM)
        assert interrupts.received() == signal.SIGTERM
    finally:
        interrupts.uninstall()  # restores the handlers and disarms the watchdog
    assert list(tmp_path.iterdir()) == []


def test_cached_build_builds_once_and_keys_by_fingerprint(bench_home):
    calls = []

    def build(tmp):
        calls.append(tmp)
        (tmp / "value").write_text("42")

    first = store.cached_build("things", {"a": 1, "b": [1, 2]}, build)
    again = store.cached_build("things", {"b": [1, 2], "a": 1}, build)  # same key, other order
    other = store.cached_build("things", {"a": 2, "b": [1, 2]}, build)
    assert first == again != other
    assert len(calls) == 2
    assert store.is_complete(first) and (first / "value").read_text() == "42"


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "renamed-aside"])
def test_a_directory_written_again_replaces_the_old_one_whole(tmp_path, monkeypatch, exchange):
    """atomic_dir over an existing directory: swapped in one step where Linux's renameat2 is (the old one is
    never missing, even for a moment: tests/test_runs.py kills a writer there), else renamed aside and removed;
    either way the new directory, whole, and nothing else is left."""
    target = tmp_path / "artifact"
    with store.atomic_dir(target) as tmp:
        (tmp / "old-only").write_text("old")
        (tmp / "value").write_text("old")
    swapped = []
    real = store._exchange

    def exchange_spy(a, b):
        swapped.append(real(a, b) if exchange else False)
        if swapped[-1]:
            assert (b / "value").read_text() == "new" and (a / "value").read_text() == "old"  # both whole
        return swapped[-1]

    monkeypatch.setattr(store, "_exchange", exchange_spy)
    with store.atomic_dir(target) as tmp:
        (tmp / "value").write_text("new")
    assert swapped == [exchange]
    assert sorted(p.name for p in target.iterdir()) == [".complete", "value"]
    assert (target / "value").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["artifact"]


def test_renameat2_swaps_two_directories():
    import os
    import tempfile
    from pathlib import Path

    if store._renameat2() is None:
        pytest.skip("no renameat2 in this C library")
    with tempfile.TemporaryDirectory() as d:
        a, b = Path(d) / "a", Path(d) / "b"
        a.mkdir()
        b.mkdir()
        (a / "x").write_text("a")
        (b / "y").write_text("b")
        assert store._exchange(a, b)
        assert os.listdir(a) == ["y"] and os.listdir(b) == ["x"]
        assert not store._exchange(a, Path(d) / "gone")  # nothing to swap with
