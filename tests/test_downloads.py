"""Public data files: the mirror layout, verified fetches from a mirror, offline errors, mirror export."""

import hashlib
import urllib.error

import pytest

from bench.errors import BenchError
from bench.infra import downloads
from bench.infra.downloads import RemoteFile


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
    path = downloads.fetch(remote)
    assert path.read_bytes() == content
    assert path.is_relative_to(bench_home)
    (mirror / remote.mirror_path).unlink()  # the cache now answers without the mirror
    assert downloads.fetch(remote) == path


def test_fetch_refuses_a_mirror_file_with_the_wrong_hash_and_keeps_nothing(tmp_path, bench_home, monkeypatch):
    remote = _remote_for(b"the real content")
    mirror = _mirror_with(tmp_path, remote, b"tampered content")
    monkeypatch.setenv("BENCH_MIRROR", str(mirror))
    with pytest.raises(BenchError, match="sha256 mismatch") as err:
        downloads.fetch(remote)
    assert remote.url in err.value.hint
    leftovers = [p for p in bench_home.rglob("*") if p.is_file()] if bench_home.exists() else []
    assert leftovers == []


def test_fetch_names_a_file_missing_from_the_mirror(tmp_path, bench_home, monkeypatch):
    (tmp_path / "empty-mirror").mkdir()
    monkeypatch.setenv("BENCH_MIRROR", str(tmp_path / "empty-mirror"))
    with pytest.raises(BenchError, match="missing from the mirror"):
        downloads.fetch(_remote_for(b"x"))


def test_offline_without_mirror_names_the_url_and_how_to_set_a_mirror(bench_home, monkeypatch):
    monkeypatch.delenv("BENCH_MIRROR", raising=False)

    def no_network(url, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(downloads.urllib.request, "urlopen", no_network)
    remote = _remote_for(b"x")
    with pytest.raises(BenchError) as err:
        downloads.fetch(remote)
    assert remote.url in err.value.message
    assert "BENCH_MIRROR" in err.value.hint
    assert not downloads.cached_path(remote).exists()


def test_bench_mirror_that_is_not_a_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_MIRROR", str(tmp_path / "nope"))
    with pytest.raises(BenchError, match="not a directory"):
        downloads.mirror_dir()


def test_export_mirror_writes_a_mirror_that_fetch_can_read(tmp_path, bench_home, monkeypatch):
    content = b"portable\n"
    remote = _remote_for(content, path="a/b.txt")
    monkeypatch.setenv("BENCH_MIRROR", str(_mirror_with(tmp_path, remote, content)))
    out = tmp_path / "new-mirror"
    downloads.export_mirror([remote], out)
    assert (out / remote.mirror_path).read_bytes() == content
    manifest = (out / "MANIFEST.tsv").read_text().splitlines()
    assert manifest[1].split("\t")[4] == remote.sha256
    monkeypatch.setenv("BENCH_MIRROR", str(out))
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "other-home"))
    assert downloads.fetch(remote).read_bytes() == content
