"""Faults a careful user meets (issue 13): corrupted caches, odd ids, BOMs, changed runs, empty inputs,
bad encodings, bad paths. Each is refused in one line, with nothing half-written, or gives exactly the
clean run (byte for byte)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.infra import digests, downloads, store
from bench.errors import BenchError
from bench.results.runs import format_trec, load_run, write_run
from cli_run import clean_bm25_run, run_main

TINY = Path(__file__).parent / "data" / "tiny-pair"


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def pair_dir(tmp_path) -> Path:
    shutil.copytree(TINY, tmp_path / "pair")
    return tmp_path / "pair"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A clean `bench run` of bm25 on the tiny pair (its run directory)."""
    return clean_bm25_run(tmp_path_factory.mktemp("reference"), TINY / "pair.yaml")


def bench_run(monkeypatch, capsys, pair_file: Path, runs: Path, systems: str = "bm25", *extra):
    return run_main(monkeypatch, capsys, "-q", "run", "--pair-file", str(pair_file), "--systems", systems,
                    "--runs", str(runs), "--no-report", *extra)


# --- 1. a cached download is verified where it is used ------------------------------------------------


def _remote(content: bytes) -> downloads.RemoteFile:
    digest = hashlib.sha256(content).hexdigest()
    return downloads.RemoteFile("owner/name", "0" * 40, "data/passages.txt", digest, "CC0-1.0")


def _mirror(tmp_path, remote, content: bytes) -> Path:
    target = tmp_path / "mirror" / remote.mirror_path
    target.parent.mkdir(parents=True)
    target.write_bytes(content)
    return tmp_path / "mirror"


CLEAN = b"the cat sat on the mat\n" * 50


def test_a_corrupted_cached_download_is_removed_and_fetched_again(tmp_path, bench_home, monkeypatch, caplog):
    remote = _remote(CLEAN)
    monkeypatch.setenv("BENCH_MIRROR", str(_mirror(tmp_path, remote, CLEAN)))
    path = downloads.fetch(remote)
    path.write_bytes(CLEAN.replace(b" the ", b" teh ", 1))  # same size, another mtime
    with caplog.at_level(logging.WARNING):
        assert downloads.fetch(remote) == path
    assert path.read_bytes() == CLEAN
    assert "is corrupt" in caplog.text and "fetching it again" in caplog.text


def test_a_corrupted_cache_and_a_corrupted_mirror_fail_in_one_line_and_keep_nothing(tmp_path, bench_home, monkeypatch):
    remote = _remote(CLEAN)
    mirror = _mirror(tmp_path, remote, CLEAN)
    monkeypatch.setenv("BENCH_MIRROR", str(mirror))
    path = downloads.fetch(remote)
    path.write_bytes(b"x" + CLEAN[1:])
    (mirror / remote.mirror_path).write_bytes(b"y" + CLEAN[1:])
    with pytest.raises(BenchError, match="sha256 mismatch") as err:
        downloads.fetch(remote)
    assert "\n" not in str(err.value)
    assert not path.exists()


def test_bench_fetch_hashes_every_cached_file_again(tmp_path, bench_home, monkeypatch, capsys):
    """Even a corruption that leaves the cheap stamp unchanged (here: a forged stamp) is found by `bench fetch`."""
    remote = _remote(CLEAN)
    monkeypatch.setenv("BENCH_MIRROR", str(_mirror(tmp_path, remote, CLEAN)))
    path = downloads.fetch(remote)
    path.write_bytes(CLEAN.replace(b"cat", b"dog", 1))
    stamp = digests._stamp(path.resolve(), path.resolve().stat())
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(remote.sha256)  # the stamp now vouches for the corrupt bytes
    monkeypatch.setattr("bench.data.pairs.remote_files", lambda pair: [remote])
    code, out, _ = run_main(monkeypatch, capsys, "-q", "fetch", "--pair", "sw-en")
    assert code == 0 and "1 files verified" in out
    assert path.read_bytes() == CLEAN


@pytest.mark.integration
def test_a_corrupted_afriqa_file_never_reaches_the_collection(tmp_path, monkeypatch, real_data):
    from bench.data.collection import afriqa, forget_loaded
    from bench.data.pairs import get_pair

    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))  # a private cache: this test corrupts it
    forget_loaded()
    clean = get_pair("sw-en").collection().docs_fingerprint
    gold = downloads.cached_path(afriqa.gold_file("swa", "test"))
    text = gold.read_text(encoding="utf-8")
    assert " the " in text
    gold.write_text(text.replace(" the ", " teh ", 1), encoding="utf-8")
    forget_loaded()
    collection = get_pair("sw-en").collection()
    assert collection.docs_fingerprint == clean
    assert collection.sources[afriqa.gold_file("swa", "test").path] == digests.cached_sha256(gold)
    forget_loaded()


# --- 2, 3. ids and byte-order marks ------------------------------------------------------------------


@pytest.mark.parametrize("file,edit,where", [
    ("queries.tsv", lambda t: t.replace("q1\t", "q 0\t"),
     "queries.tsv:1: query id 'q 0' is empty or contains whitespace"),
    ("docs.jsonl", lambda t: t.replace('"d2"', '"d 2"'),
     "docs.jsonl:2: document id 'd 2' is empty or contains whitespace"),
    ("docs.jsonl", lambda t: t.replace('"d3"', '""'), "docs.jsonl:3: document id '' is empty"),
])
def test_an_id_with_whitespace_is_an_error_naming_file_and_line(monkeypatch, capsys, bench_home, tmp_path, pair_dir,
                                                                file, edit, where):
    (pair_dir / file).write_text(edit((pair_dir / file).read_text()))
    code, _, err = bench_run(monkeypatch, capsys, pair_dir / "pair.yaml", tmp_path / "runs")
    assert code == 2 and where in one_line(err)
    assert not (tmp_path / "runs").exists()


def test_the_trec_writer_refuses_an_id_it_cannot_write():
    for run in ({"q 1": {"d1": 1.0}}, {"q1": {"d 1": 1.0}}, {"q1": {"": 1.0}}):
        with pytest.raises(BenchError, match="empty or contains whitespace"):
            format_trec(run, "bm25")
    with pytest.raises(BenchError, match="NaN"):
        format_trec({"q1": {"d1": float("nan")}}, "bm25")


def test_a_bom_on_queries_and_qrels_gives_the_clean_run(monkeypatch, capsys, bench_home, tmp_path, pair_dir, reference):
    for name in ("queries.tsv", "qrels.txt"):
        (pair_dir / name).write_bytes(b"\xef\xbb\xbf" + (pair_dir / name).read_bytes())
    code, _, err = bench_run(monkeypatch, capsys, pair_dir / "pair.yaml", tmp_path / "runs")
    assert code == 0, err
    got = tmp_path / "runs" / "xx-en" / "bm25"
    assert (got / "run.trec").read_bytes() == (reference / "run.trec").read_bytes()
    assert (got / "perquery.csv").read_bytes() == (reference / "perquery.csv").read_bytes()


# --- 4, 5. runs whose files changed; runs without a judged query ----------------------------------------


@pytest.fixture
def stored(tmp_path, reference) -> Path:
    """A copy of the reference run under a fresh runs directory (and an expected.yaml for it)."""
    runs = tmp_path / "runs"
    shutil.copytree(reference, runs / "xx-en" / "bm25")
    scores = json.loads((reference / "manifest.json").read_text())["measures"]
    (tmp_path / "expected.yaml").write_text(f"version: 1\ntolerance: 0.01\nexpected:\n  xx-en:\n    bm25:\n"
                                            f"      AP: {scores['AP']:.4f}\n")
    return runs


@pytest.mark.parametrize("damage", [
    lambda run: (run / "run.trec").write_text(""),
    lambda run: (run / "perquery.csv").write_text((run / "perquery.csv").read_text().replace("0.5", "0.9")),
])
def test_report_and_check_refuse_a_run_whose_files_changed(monkeypatch, capsys, tmp_path, stored, damage):
    damage(stored / "xx-en" / "bm25")
    code, _, err = run_main(monkeypatch, capsys, "report", "--runs", str(stored), "--reports", str(tmp_path / "rep"))
    line = one_line(err)
    assert code == 2 and "refusing run" in line and "xx-en/bm25" in line
    assert "bench run --pair-file <the pair file of xx-en> --systems bm25" in line
    assert not (tmp_path / "rep").exists()
    code, out, err = run_main(monkeypatch, capsys, "check", "--expected", str(tmp_path / "expected.yaml"),
                              "--runs", str(stored))
    assert code == 2 and "refusing run" in one_line(err) and "OK" not in out


@pytest.mark.parametrize("files", ["deleted", "empty"])
def test_a_run_without_file_hashes_is_accepted_only_when_its_values_derive_again(
        monkeypatch, capsys, tmp_path, stored, caplog, files):
    from bench.data.pair_ref import resolve_pair

    run = stored / "xx-en" / "bm25"
    manifest = json.loads((run / "manifest.json").read_text())
    if files == "deleted":
        del manifest["files"]
    else:
        manifest["files"] = {}
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "manifest.sha256").unlink()  # as bench wrote runs before manifests were hashed too
    with pytest.raises(BenchError, match="records no file hashes, so its values cannot be trusted as they are"):
        load_run(run)  # a reader without the qrels refuses it
    qrels = resolve_pair(TINY / "pair.yaml").collection().qrels
    with caplog.at_level(logging.WARNING):
        assert load_run(run, qrels=lambda r: qrels) is not None
    assert "records no file hashes: accepted, its perquery.csv derived again from run.trec and the qrels agree" in (
        caplog.text)
    code, out, err = run_main(monkeypatch, capsys, "report", "--pair-file", str(TINY / "pair.yaml"), "--runs",
                              str(stored), "--reports", str(tmp_path / "ok"))
    assert code == 0, err  # the report, which has the qrels, reads it
    assert (tmp_path / "ok" / "xx-en.md").exists()
    table = (run / "perquery.csv").read_text()
    (run / "perquery.csv").write_text(table.replace("q1,AP,1.0", "q1,AP,0.25"))  # an edited value
    with pytest.raises(BenchError, match="perquery.csv gives AP 0.2500 for query q1, its run.trec scores 1.0000"):
        load_run(run, qrels=lambda r: qrels)
    code, _, err = run_main(monkeypatch, capsys, "report", "--pair-file", str(TINY / "pair.yaml"), "--runs",
                            str(stored), "--reports", str(tmp_path / "rep"))
    assert code == 2 and "refusing run" in one_line(err) and "gives AP 0.2500 for query q1" in one_line(err)
    assert not (tmp_path / "rep").exists()


def test_a_run_without_a_judged_query_is_never_written_nor_read(tmp_path):
    empty = pd.DataFrame([], columns=["query_id", "measure", "value"])
    with pytest.raises(BenchError, match="no judged query"):
        write_run(tmp_path, "xx-en", "bm25", {}, empty, {"pair": "xx-en", "system": "bm25"}, 10)
    assert not (tmp_path / "xx-en").exists()
    old = tmp_path / "xx-en" / "bm25"  # as an older bench wrote it
    old.mkdir(parents=True)
    (old / "run.trec").write_text("")
    empty.to_csv(old / "perquery.csv", index=False)
    (old / "manifest.json").write_text(json.dumps({"pair": "xx-en", "system": "bm25", "n_queries": 0,
                                                   "n_queries_answered": 0}))
    (old / store.COMPLETE_MARKER).write_text("")
    with pytest.raises(BenchError, match="scored no judged query") as err:
        load_run(old)
    assert "delete it" in err.value.hint


# --- 7, 8. empty inputs are errors before any work ----------------------------------------------------


def _unknown_docs(d):
    (d / "qrels.txt").write_text("q1 0 d9 1\nq2 0 d8 1\n")


@pytest.mark.parametrize("edit,message", [
    (lambda d: (d / "queries.tsv").write_text(""), "queries.tsv has no queries"),
    (lambda d: (d / "docs.jsonl").write_text("\n"), "docs.jsonl has no documents"),
    (lambda d: (d / "qrels.txt").write_text(""), "qrels.txt has no qrels"),
    (_unknown_docs, "no qrel judges a query of queries.tsv on a document of docs.jsonl"),
    (lambda d: (d / "qrels.txt").write_text("q7 0 d1 1\n"), "no qrel judges a query"),
    (lambda d: (d / "qrels.txt").write_text("q1 0 d1 0\n"), "no qrel marks a document relevant"),
])
def test_empty_inputs_are_errors_before_any_work(monkeypatch, capsys, bench_home, tmp_path, pair_dir, edit, message):
    edit(pair_dir)
    code, _, err = bench_run(monkeypatch, capsys, pair_dir / "pair.yaml", tmp_path / "runs")
    assert code == 2 and message in one_line(err)
    assert not (tmp_path / "runs").exists() and not (bench_home / "indexes").exists()


@pytest.mark.parametrize("content,message", [
    ("", "bitext.tsv has no sentence pairs"),
    ("paka mkeka\tcat mat\n", "no bitext pair of xx-en is left after cleaning"),  # the leakage guard drops it
])
def test_an_empty_bitext_is_an_error_before_bm25_runs(monkeypatch, capsys, bench_home, tmp_path, pair_dir,
                                                       content, message):
    (pair_dir / "bitext.tsv").write_text(content)
    (pair_dir / "pair.yaml").write_text((pair_dir / "pair.yaml").read_text() + "bitext: bitext.tsv\n")
    code, _, err = bench_run(monkeypatch, capsys, pair_dir / "pair.yaml", tmp_path / "runs", "bm25,bm25-psq")
    assert code == 2 and message in one_line(err)
    assert not (tmp_path / "runs").exists()


# --- 9, 12. encodings, YAML errors, conflicting qrels, empty texts --------------------------------------


@pytest.mark.parametrize("file,line", [("pair.yaml", 2), ("queries.tsv", 2), ("docs.jsonl", 3), ("bitext.tsv", 1)])
def test_bytes_that_are_not_utf8_are_an_error_naming_file_and_line(monkeypatch, capsys, bench_home, tmp_path, pair_dir,
                                                                   file, line):
    (pair_dir / "bitext.tsv").write_text("ndizi\tbanana\n")
    (pair_dir / "pair.yaml").write_text((pair_dir / "pair.yaml").read_text() + "bitext: bitext.tsv\n")
    lines = (pair_dir / file).read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1].replace(b"a", b"\xe9", 1)
    (pair_dir / file).write_bytes(b"\n".join(lines))
    code, _, err = bench_run(monkeypatch, capsys, pair_dir / "pair.yaml", tmp_path / "runs", "bm25,bm25-psq")
    assert code == 2 and f"{file}:{line}: not UTF-8" in one_line(err)
    assert not (tmp_path / "runs").exists()


def test_expected_yaml_that_is_not_utf8_is_one_line(monkeypatch, capsys, tmp_path, stored):
    path = tmp_path / "expected.yaml"
    path.write_bytes(path.read_bytes().replace(b"bm25", b"bm\xff25"))
    code, _, err = run_main(monkeypatch, capsys, "check", "--expected", str(path), "--runs", str(stored))
    assert code == 2 and "expected.yaml:5: not UTF-8" in one_line(err)


def test_a_yaml_syntax_error_names_the_line(monkeypatch, capsys, bench_home, pair_dir):
    (pair_dir / "pair.yaml").write_text("name: xx-en\nqueries: [queries.tsv\ndocs: docs.jsonl\n")
    code, _, err = bench_run(monkeypatch, capsys, pair_dir / "pair.yaml", pair_dir / "runs")
    assert code == 2 and "pair.yaml:3: not valid YAML" in one_line(err)


@pytest.mark.parametrize("file,content,message", [
    ("qrels.txt", "q1 0 d1 1\nq2 0 d2 1\nq1 0 d1 0\n", "qrels.txt:3: query q1 judges d1 0, but line 1 judged it 1"),
    ("queries.jsonl", '{"query_id": "q1", "text": "paka"}\n{"query_id": "q2", "text": " "}\n',
     "queries.jsonl:2: query 'q2' has no text"),
    ("queries.tsv", "q1\tpaka\nq2\tmbwa\nq1\tnyumba\n", "queries.tsv:3: duplicate query id 'q1' (first on line 1)"),
])
def test_conflicts_and_empty_texts_are_errors(monkeypatch, capsys, bench_home, tmp_path, pair_dir, file, content,
                                              message):
    (pair_dir / file).write_text(content)
    if file.endswith(".jsonl"):
        (pair_dir / "pair.yaml").write_text((pair_dir / "pair.yaml").read_text().replace("queries.tsv", file))
    code, _, err = bench_run(monkeypatch, capsys, pair_dir / "pair.yaml", tmp_path / "runs")
    assert code == 2 and message in one_line(err)


def test_an_unknown_pair_or_system_in_expected_yaml_is_an_error_not_a_missing_run(monkeypatch, capsys, tmp_path,
                                                                                   stored):
    for body, message in (("  xx-en:\n    bm52:\n      AP: 0.5\n", "unknown system 'bm52'"),
                          ("  sw-n:\n    bm25:\n      AP: 0.5\n", "unknown pair 'sw-n'")):
        (tmp_path / "bad.yaml").write_text(f"version: 1\ntolerance: 0.01\nexpected:\n{body}")
        code, _, err = run_main(monkeypatch, capsys, "check", "--expected", str(tmp_path / "bad.yaml"),
                                "--runs", str(stored))
        line = one_line(err)
        assert code == 2 and message in line and "bad.yaml" in line and "did you mean" in line


# --- 10. paths and options are checked before any work ----------------------------------------------------


@pytest.mark.parametrize("which", ["--runs", "--reports"])
def test_a_file_where_a_directory_is_needed_is_refused_before_work(monkeypatch, capsys, bench_home, tmp_path, which):
    (tmp_path / "taken").write_text("a file")
    args = {"--runs": str(tmp_path / "runs"), "--reports": str(tmp_path / "reports"), which: str(tmp_path / "taken")}
    code, _, err = run_main(monkeypatch, capsys, "-q", "run", "--pair-file", str(TINY / "pair.yaml"),
                            "--systems", "bm25", *[x for kv in args.items() for x in kv])
    assert code == 2 and f"{which} {tmp_path / 'taken'} is a file, not a directory" in one_line(err)
    assert not bench_home.exists() and not (tmp_path / "runs").exists()
    if which == "--reports":
        code, _, err = run_main(monkeypatch, capsys, "report", "--runs", str(tmp_path),
                                "--reports", str(tmp_path / "taken"))
        assert code == 2 and "is a file, not a directory" in one_line(err)


def test_bench_home_that_is_a_file_is_named_as_such(monkeypatch, capsys, tmp_path):
    (tmp_path / "home").write_text("a file")
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    for args in (("fetch", "--pair", "sw-en"),
                 ("-q", "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "bm25",
                  "--runs", str(tmp_path / "runs"))):
        code, _, err = run_main(monkeypatch, capsys, *args)
        line = one_line(err)
        assert code == 2 and f"BENCH_HOME={tmp_path / 'home'} is a file, not a directory" in line
        assert "BENCH_MIRROR" not in line
    assert not (tmp_path / "runs").exists()


def test_stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    import subprocess

    from bench.infra import tempfiles

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    host = tempfiles._HOST
    stale = tmp_path / f".abc.{host}-{pid}.k2j4h5g6.tmp"
    mine = tmp_path / f".abc.{host}-{os.getpid()}.aaaaaaaa.tmp"
    elsewhere = tmp_path / f".abc.otherhost-{pid}.bbbbbbbb.tmp"
    legacy_old, legacy_new = tmp_path / ".abc.zzzzzzzz.tmp", tmp_path / ".abc.yyyyyyyy.tmp"
    for path in (stale, mine, elsewhere, legacy_old, legacy_new):
        path.mkdir()
        (path / "half").write_text("half-written")
    os.utime(legacy_old, (1, 1))
    assert tempfiles.sweep_stale_temps(tmp_path.parent) >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (mine, elsewhere, legacy_new))
    again = tmp_path / "sub" / f".abc.{host}-{pid}.cccccccc.tmp"  # the next writer of "abc" removes it
    again.mkdir(parents=True)
    with store.atomic_dir(tmp_path / "sub" / "abc") as tmp:
        assert not again.exists() and tmp.name.startswith(f".abc.{host}-{os.getpid()}.")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["abc"]


# --- issue 25: the environment, closed pipes, read-only directories, the API's arguments -------------------------


@pytest.mark.parametrize("name,value,expects", [
    ("BENCH_THREADS", "abc", "a positive integer (CPU threads)"),
    ("BENCH_THREADS", "-1", "a positive integer (CPU threads)"),
    ("BENCH_LOCK_STALE_S", "x", "a positive number of seconds"),
    ("BENCH_STOP_GRACE_S", "0", "a positive number of seconds"),
    ("BENCH_DEVICE", "gpu", "auto, cpu, cuda or cuda:N"),
    ("BENCH_BATCH_TOKENS", "0", "a positive integer (padded tokens per inference batch)"),
])
def test_a_bad_bench_variable_is_one_line_naming_it_before_any_work(monkeypatch, capsys, bench_home, tmp_path,
                                                                    name, value, expects):
    monkeypatch.setenv(name, value)
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "bm25",
                            "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports"))
    want = f"error: {name}={value!r} is not valid: it must be {expects} (fix or unset {name})"
    assert code == 2 and one_line(err) == want
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()


def test_a_closed_pipe_ends_the_listing_quietly(tmp_path):
    import subprocess

    env = {**os.environ, "BENCH_HOME": str(tmp_path / "home")}
    listing = subprocess.Popen([sys.executable, "-c", "from bench.cli import main; main()", "systems"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # the reader goes away before the listing is written (like `bench systems | head -0`): had it read a line
    # first, a listing smaller than the pipe's buffer could be written whole before the reader left
    listing.stdout.close()
    _, err = listing.communicate(timeout=120)
    assert listing.returncode == 141 and err == b""


@pytest.mark.parametrize("command", [["check", "--expected", "reports/expected.yaml"], ["report"]])
def test_a_runs_directory_that_does_not_exist_is_an_error_not_an_empty_check(monkeypatch, capsys, tmp_path, command):
    root = Path(__file__).resolve().parents[1]
    args = [a if a != "reports/expected.yaml" else str(root / a) for a in command]
    code, _, err = run_main(monkeypatch, capsys, *args, "--runs", str(tmp_path / "typo"))
    assert code == 2 and one_line(err) == (f"error: --runs {tmp_path / 'typo'}: no such directory "
                                           "(--runs must name an existing directory)")
    assert not (tmp_path / "typo").exists()


def test_fetch_to_a_file_is_one_line(monkeypatch, capsys, tmp_path):
    (tmp_path / "taken").write_text("a file")
    code, out, err = run_main(monkeypatch, capsys, "fetch", "--pair", "sw-en", "--to", str(tmp_path / "taken"))
    assert code == 2 and one_line(err) == (f"error: --to {tmp_path / 'taken'} is a file, not a directory "
                                           "(give a directory for --to)")
    assert (tmp_path / "taken").read_text() == "a file"


@pytest.mark.parametrize("kwargs,message", [
    ({"seed": "abc"}, "seed must be a non-negative integer, got 'abc'"),
    ({"seed": -1}, "seed must be a non-negative integer, got -1"),
    ({"depth": 1.5}, "depth must be a positive integer, got 1.5"),
    ({"depth": 0}, "depth must be a positive integer, got 0"),
    ({"runs": "A_FILE"}, "is a file, not a directory"),
    ({"reports": "A_FILE"}, "is a file, not a directory"),
])
def test_the_api_checks_its_arguments_before_any_work(bench_home, tmp_path, kwargs, message):
    import bench

    (tmp_path / "a-file").write_text("a file")
    kwargs = {k: str(tmp_path / "a-file") if v == "A_FILE" else v for k, v in kwargs.items()}
    kwargs.setdefault("runs", tmp_path / "runs")
    with pytest.raises(BenchError, match=message.replace("(", r"\(")):
        bench.run(TINY / "pair.yaml", systems="bm25", **kwargs)
    assert not (tmp_path / "runs").exists() and (tmp_path / "a-file").read_text() == "a file"


@pytest.mark.parametrize("measures,message", [
    ("nDCG@0", "measure nDCG@0: its cutoff must be a whole number of at least 1, not 0 (e.g. nDCG@10)"),
    ("R@0", "measure R@0: its cutoff must be a whole number of at least 1, not 0 (e.g. R@10)"),
    ("nDCG@10.5", "measure nDCG@10.5: its cutoff must be a whole number of at least 1, not 10.5 (e.g. nDCG@10)"),
    ("AP,alpha_nDCG@10", "measure alpha_nDCG@10 cannot be computed here: "),
])
def test_a_measure_that_cannot_be_computed_is_one_line_before_any_work(monkeypatch, capsys, bench_home, tmp_path,
                                                                       pair_dir, measures, message):
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(pair_dir / "pair.yaml"), "--systems",
                            "bm25", "--measures", measures, "--runs", str(tmp_path / "runs"))
    assert code == 2 and one_line(err).startswith(f"error: {message}")
    assert not (tmp_path / "runs").exists()
    # the same measures in the pair file: the same line, before any work
    text = (pair_dir / "pair.yaml").read_text()
    (pair_dir / "pair.yaml").write_text(text.replace("measures: [AP, RR@10]", f"measures: [{measures}]"))
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(pair_dir / "pair.yaml"), "--systems",
                            "bm25", "--runs", str(tmp_path / "runs"))
    assert code == 2 and one_line(err).startswith(f"error: {message}")
    assert not (tmp_path / "runs").exists()


def test_the_api_refuses_an_empty_run_and_an_unknown_query(bench_home, tmp_path):
    import bench

    with pytest.raises(BenchError, match=r"run 'run' gave an empty run: no query has a scored document"):
        bench.evaluate(TINY / "pair.yaml", {})
    results = bench.evaluate(TINY / "pair.yaml", {"q1": {"d1": 2.0, "d2": 1.0}}, name="mine")
    assert results.top("mine", "q1")["doc_id"].tolist() == ["d1", "d2"]
    with pytest.raises(BenchError, match=r"no query 'q-unknown' in the results of mine"):
        results.top("mine", "q-unknown")


# --- issue 25: strict input files ---------------------------------------------------------------------------------

PAIR_HINT = "(see the pair file format in the README (section 'Your own pair'))"
TREC_HINT = "(each line is 'query_id Q0 doc_id rank score tag' (six whitespace-separated columns))"
EXPECTED_HINT = "(fix the file, or rewrite it with `bench check --update`)"


def _toml(pair_dir: Path, extra: str) -> Path:
    path = pair_dir / "pair.toml"
    path.write_text('name = "xx-en"\nqueries = "queries.tsv"\ndocs = "docs.jsonl"\nqrels = "qrels.txt"\n' + extra)
    return path


@pytest.mark.parametrize("toml,extra,where,problem", [
    (False, "docs: docs.jsonl\n", ":7", "not valid YAML: duplicate key 'docs' (first on line 4)"),
    (False, "measures: [AP]\n", ":7", "not valid YAML: duplicate key 'measures' (first on line 6)"),
    (True, 'docs = "docs.jsonl"\n', ":5", "not valid TOML: Cannot overwrite a value (column 20)"),
    (False, 'low_resource: "false"\n', ":7", "low_resource must be true or false, not 'false'"),
    (False, "low_resource: 0\n", ":7", "low_resource must be true or false, not 0"),
    (False, "low_resource:\n", ":7", "low_resource must be true or false, not None"),
    (True, 'low_resource = "false"\n', "", "low_resource must be true or false, not 'false'"),
])
def test_a_repeated_key_or_a_quoted_boolean_in_a_pair_file_is_one_line(monkeypatch, capsys, bench_home, tmp_path,
                                                                       pair_dir, toml, extra, where, problem):
    path = _toml(pair_dir, extra) if toml else pair_dir / "pair.yaml"
    if not toml:
        path.write_text(path.read_text() + extra)
    code, _, err = bench_run(monkeypatch, capsys, path, tmp_path / "runs")
    hint = "(write true or false, without quotes)" if "low_resource" in problem else PAIR_HINT
    assert code == 2 and one_line(err) == f"error: {path}{where}: {problem} {hint}"
    assert not (tmp_path / "runs").exists() and not (bench_home / "indexes").exists()


def test_real_booleans_are_read_as_written(bench_home, pair_dir):
    from bench.data.collection.local import load_pair_file

    path = pair_dir / "pair.yaml"
    path.write_text(path.read_text() + "low_resource: false\n")
    assert load_pair_file(path).low_resource is False
    assert load_pair_file(_toml(pair_dir, "low_resource = false\n")).low_resource is False
    assert load_pair_file(TINY / "pair.yaml").low_resource is True  # the default


@pytest.mark.parametrize("relevance,problem", [
    ("1_0", "is not a plain integer (ASCII digits, an optional sign)"),
    ("\u0661", "is not a plain integer (ASCII digits, an optional sign)"),  # an Arabic-Indic 1: int() reads it
    ("1.0", "is not an integer"),
])
def test_a_relevance_not_written_plainly_is_one_line(monkeypatch, capsys, bench_home, tmp_path, pair_dir,
                                                     relevance, problem):
    qrels = pair_dir / "qrels.txt"
    qrels.write_text(qrels.read_text().replace("q1 0 d1 1", f"q1 0 d1 {relevance}"))
    code, _, err = bench_run(monkeypatch, capsys, pair_dir / "pair.yaml", tmp_path / "runs")
    assert code == 2 and one_line(err) == f"error: {qrels}:1: relevance {relevance!r} {problem} {PAIR_HINT}"
    assert not (tmp_path / "runs").exists()


SCORES = [
    ("1_0", "is not a plain number (ASCII digits, an optional sign, point and exponent)"),
    ("\uff12.0", "is not a plain number (ASCII digits, an optional sign, point and exponent)"),  # a full-width 2
    ("1e400", "is not a finite number"),
    ("-inf", "is not a finite number"),
    ("NaN", "is not a finite number"),
]


@pytest.mark.parametrize("score,problem", SCORES)
def test_a_run_score_not_written_plainly_is_one_line_and_stores_nothing(monkeypatch, capsys, bench_home, tmp_path,
                                                                        score, problem):
    bad = tmp_path / "bad.trec"
    bad.write_text(f"q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 {score} t\n", encoding="utf-8")
    code, _, err = run_main(monkeypatch, capsys, "eval", "--pair-file", str(TINY / "pair.yaml"),
                            "--run", f"mine={bad}", "--runs", str(tmp_path / "runs"),
                            "--reports", str(tmp_path / "reports"))
    assert code == 2 and one_line(err) == f"error: {bad}:2: score {score!r} {problem} {TREC_HINT}"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()


@pytest.mark.parametrize("score,problem", SCORES)
def test_a_stored_run_score_not_written_plainly_is_refused(tmp_path, score, problem):
    from bench.results.runs import read_trec

    path = tmp_path / "run.trec"
    path.write_text(f"q1 Q0 d1 1 {score} t\n", encoding="utf-8")
    with pytest.raises(BenchError) as err:
        read_trec(path)
    assert str(err.value) == f"{path}:1: score {score!r} {problem} {TREC_HINT}"


@pytest.mark.parametrize("body,where,keys,value", [
    ("tolerance: 0.01\nexpected:\n  xx-en:\n    bm25:\n      AP: .nan\n", 6, "expected/xx-en/bm25/AP", "nan"),
    ("tolerance: 0.01\nexpected:\n  xx-en:\n    bm25:\n      AP: {score: .inf}\n", 6,
     "expected/xx-en/bm25/AP/score", "inf"),
    ("tolerance: 0.01\nexpected:\n  xx-en:\n    bm25:\n      AP: {score: 0.5, tolerance: .NaN}\n", 6,
     "expected/xx-en/bm25/AP/tolerance", "nan"),
    ("tolerance: .nan\nexpected:\n  xx-en:\n    bm25:\n      AP: 0.5\n", 2, "tolerance", "nan"),
])
def test_a_nan_or_infinite_expectation_is_one_line_not_a_fail(monkeypatch, capsys, tmp_path, stored, body, where,
                                                               keys, value):
    path = tmp_path / "expected.yaml"
    path.write_text("version: 1\n" + body)
    for update in ((), ("--update",)):
        code, out, err = run_main(monkeypatch, capsys, "check", "--expected", str(path), "--runs", str(stored),
                                  *update)
        want = f"error: {path}:{where}: {keys}: {value} is not a finite number {EXPECTED_HINT}"
        assert code == 2 and one_line(err) == want and "FAIL" not in out
    assert path.read_text() == "version: 1\n" + body


@pytest.mark.parametrize("body,problem", [
    ("expected:\n  xx-en:\n    bm25:\n      AP: 0.5\nexpected: {}\n", ":7: invalid YAML: duplicate key 'expected' "
                                                                     "(first on line 3)"),
    ("expected:\n  xx-en:\n    bm25:\n      AP: 0.5_1\n", ":6: invalid YAML: 0.5_1 is not a plain number "
                                                          "(ASCII digits, an optional sign, point and exponent)"),
])
def test_a_repeated_key_or_an_odd_number_in_expected_yaml_is_one_line(monkeypatch, capsys, tmp_path, stored, body,
                                                                      problem):
    path = tmp_path / "expected.yaml"
    path.write_text("version: 1\ntolerance: 0.01\n" + body)
    code, out, err = run_main(monkeypatch, capsys, "check", "--expected", str(path), "--runs", str(stored))
    assert code == 2 and one_line(err) == f"error: {path}{problem} (fix the file)" and out == ""


# --- issue 25: a full disk --------------------------------------------------------------------------------------


def test_a_full_disk_while_building_an_artifact_is_one_line_naming_where(bench_home, tmp_path):
    import errno

    def build(tmp):
        (tmp / "half.bin").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(BenchError) as caught:
        store.cached_build("full-disk-test", {"test": 1}, build)
    path = store.artifact_dir("full-disk-test", {"test": 1})
    assert str(caught.value) == (f"no space left on the device of {path.parent} (writing {path.name}) "
                                 "(free some space there, or point BENCH_HOME, --runs or --reports at another disk)")
    assert not path.exists() and [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_full_disk_in_the_runs_directory_is_one_line_and_leaves_no_run(monkeypatch, capsys, bench_home, tmp_path):
    import errno

    import pandas as pd_module

    real = pd_module.DataFrame.to_csv

    def full(self, *args, **kwargs):
        if args and str(args[0]).endswith("perquery.csv"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd_module.DataFrame, "to_csv", full)
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "bm25",
                            "--runs", str(tmp_path / "runs"), "--no-report")
    line = one_line(err)
    assert code == 2 and line.startswith(f"error: no space left on the device of {tmp_path / 'runs' / 'xx-en'}")
    assert not (tmp_path / "runs" / "xx-en" / "bm25").exists()
    assert [p.name for p in (tmp_path / "runs" / "xx-en").iterdir()] == []


# --- issue 25: a stored run is whole or refused -------------------------------------------------------------------


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.update(files={}), "its manifest.json was changed after the run was written"),
    (lambda m: m.pop("files"), "its manifest.json was changed after the run was written"),
    (lambda m: m.update(system="optical"), "its manifest.json was changed after the run was written"),
])
def test_a_run_whose_manifest_was_edited_is_refused(monkeypatch, capsys, tmp_path, stored, edit, message):
    run = stored / "xx-en" / "bm25"
    manifest = json.loads((run / "manifest.json").read_text())
    edit(manifest)
    (run / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BenchError, match=message):
        load_run(run)
    code, _, err = run_main(monkeypatch, capsys, "report", "--runs", str(stored), "--reports", str(tmp_path / "rep"))
    assert code == 2 and one_line(err).startswith(f"error: refusing run {run}: {message}")
    assert not (tmp_path / "rep").exists()


def test_a_run_moved_to_another_name_is_refused(stored):
    run = stored / "xx-en" / "bm25"
    moved = run.rename(stored / "xx-en" / "bm25-copy")
    with pytest.raises(BenchError, match="its manifest.json names the run 'bm25', not 'bm25-copy'"):
        load_run(moved)


# --- issue 25: grid files are read strictly -------------------------------------------------------------------


@pytest.mark.parametrize("content,problem", [
    (b"pairs: [sw-en]\nseeds: [0]\npairs: [ha-en]\n",
     ":3: not valid YAML: duplicate key 'pairs' (first on line 1) (fix the grid file)"),
    (b"pairs: [sw-en]\nshards: 1_0\n",
     ":2: not valid YAML: 1_0 is not a plain integer (ASCII digits, an optional sign) (fix the grid file)"),
    (b"pairs: [sw-en]\nsystems: bm\xff25\n", ":2: not UTF-8 (byte 0xff at column 12) (save the file as UTF-8)"),
])
def test_a_grid_file_with_a_repeated_key_or_an_odd_number_is_one_line(monkeypatch, capsys, bench_home, tmp_path,
                                                                      content, problem):
    """Grid files go through the strict YAML loader as pair files do: plain YAML would use the last `pairs`
    and read 1_0 as 10."""
    grid = tmp_path / "grid.yaml"
    grid.write_bytes(content)
    code, out, err = run_main(monkeypatch, capsys, "grid", "--file", str(grid), "--runs", str(tmp_path / "runs"),
                              "--reports", str(tmp_path / "reports"))
    assert (code, out, err) == (2, "", f"error: {grid}{problem}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.yaml"]


# --- issue 26: a model the hub cannot give is one complete line -------------------------------------------------


def _not_cached(cause: BaseException | None = None):
    from huggingface_hub.errors import LocalEntryNotFoundError

    error = LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder for the specified revision on "
                                    "the local disk and outgoing traffic has been disabled. To enable repo look-ups a"
                                    "nd downloads online, set 'HF_HUB_OFFLINE=0' as environment variable.")
    error.__cause__ = cause
    return error


def _no_such_repository():
    from huggingface_hub.errors import RepositoryNotFoundError

    return RepositoryNotFoundError.__new__(RepositoryNotFoundError)  # as the hub answers 404 (no response kept here)


HUB_HINT = ("(check the name, or use a packaged model (multilingual-e5-small, all-minilm-l6-v2) or a local model "
            "directory)")


@pytest.mark.parametrize("spec,offline,raised,line", [
    ("multilingual-e5-smal", True, _not_cached,
     "model 'multilingual-e5-smal' is not in the local Hugging Face cache, and the hub is off (HF_HUB_OFFLINE) "
     "(did you mean multilingual-e5-small?)"),
    ("someone/encoder", False, lambda: _not_cached(ConnectionError("[Errno -2] Name or service not known")),
     "model 'someone/encoder' is not in the local Hugging Face cache, and the hub cannot be reached "
     f"(ConnectionError: [Errno -2] Name or service not known) {HUB_HINT}"),
    ("someone/encoder", False, _no_such_repository,
     f"the Hugging Face hub has no model 'someone/encoder' (or it is private) {HUB_HINT}"),
])
def test_a_model_the_hub_cannot_give_is_one_complete_line(monkeypatch, capsys, bench_home, tmp_path, spec, offline,
                                                          raised, line):
    """Issue 26: a typo'd --encoder printed the hub's message cut at 160 characters, mid-sentence; the line now
    says what is wrong with the spec, whole, and what to do."""
    import huggingface_hub

    def snapshot_download(repo_id, **kwargs):
        raise raised()

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "is_offline_mode", lambda: offline)
    code, out, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "mdense",
                              "--encoder", spec, "--runs", str(tmp_path / "runs"), "--no-report")
    assert (code, out, err) == (2, "", f"error: option encoder: {line}\n")
    assert not (tmp_path / "runs").exists() and not bench_home.exists()
