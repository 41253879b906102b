import hashlib
import urllib.error

import pytest

from bench.infra import store
from bench.errors import BenchError
from bench.infra.store import RemoteFile


def _remote_for(content: bytes, path="data/file.txt", repo="owner/name") -> RemoteFile:
    return RemoteFile(repo, "0" * 40, path, hashlib.sha256(content).hexdigest(), "CC0-1.0")


def _mirror_with(tmp_path, remote: RemoteFile, content: bytes):
    mirror = tmp_path / "mirror"
    target = mirror / remote.mirror_path
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    return mirror


def test_remote_file_url_and_mirror_layout():
    rf = RemoteFile("masakhane-io/afriqa", "abc", "data/x.json", "0" * 64, "CC-BY-4.0")
    assert rf.url == "https://raw.githubusercontent.com/masakhane-io/afriqa/abc/data/x.json"
    assert rf.mirror_path == "masakhane-io+afriqa/data/x.json"


def test_fetch_reads_mirror_verifies_and_caches(tmp_path, bench_home, monkeypatch):
    content = b"hello mirror\n"
    remote = _remote_for(content)
    mirror = _mirror_with(tmp_path, remote, content)
    monkeypatch.setenv("BENCH_MIRROR", str(mirror))
    path = store.fetch(remote)
    assert path.read_bytes() == content
    assert path.is_relative_to(bench_home)
    (mirror / remote.mirror_path).unlink()  # the cache now answers without the mirror
    assert store.fetch(remote) == path


def test_fetch_refuses_a_mirror_file_with_the_wrong_hash_and_keeps_nothing(tmp_path, bench_home, monkeypatch):
    remote = _remote_for(b"the real content")
    mirror = _mirror_with(tmp_path, remote, b"tampered content")
    monkeypatch.setenv("BENCH_MIRROR", str(mirror))
    with pytest.raises(BenchError, match="sha256 mismatch") as err:
        store.fetch(remote)
    assert remote.url in err.value.hint
    leftovers = [p for p in bench_home.rglob("*") if p.is_file()] if bench_home.exists() else []
    assert leftovers == []


def test_fetch_names_a_file_missing_from_the_mirror(tmp_path, bench_home, monkeypatch):
    (tmp_path / "empty-mirror").mkdir()
    monkeypatch.setenv("BENCH_MIRROR", str(tmp_path / "empty-mirror"))
    with pytest.raises(BenchError, match="missing from the mirror"):
        store.fetch(_remote_for(b"x"))


def test_offline_without_mirror_names_the_url_and_how_to_set_a_mirror(bench_home, monkeypatch):
    monkeypatch.delenv("BENCH_MIRROR", raising=False)

    def no_network(url, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(store.urllib.request, "urlopen", no_network)
    remote = _remote_for(b"x")
    with pytest.raises(BenchError) as err:
        store.fetch(remote)
    assert remote.url in err.value.message
    assert "BENCH_MIRROR" in err.value.hint
    assert not store.cached_path(remote).exists()


def test_bench_mirror_that_is_not_a_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_MIRROR", str(tmp_path / "nope"))
    with pytest.raises(BenchError, match="not a directory"):
        store.mirror_dir()


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


def test_export_mirror_writes_a_mirror_that_fetch_can_read(tmp_path, bench_home, monkeypatch):
    content = b"portable\n"
    remote = _remote_for(content, path="a/b.txt")
    monkeypatch.setenv("BENCH_MIRROR", str(_mirror_with(tmp_path, remote, content)))
    out = tmp_path / "new-mirror"
    store.export_mirror([remote], out)
    assert (out / remote.mirror_path).read_bytes() == content
    manifest = (out / "MANIFEST.tsv").read_text().splitlines()
    assert manifest[1].split("\t")[4] == remote.sha256
    monkeypatch.setenv("BENCH_MIRROR", str(out))
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "other-home"))
    assert store.fetch(remote).read_bytes() == content


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
