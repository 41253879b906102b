"""Stops (issue 13): SIGTERM and SIGINT at several moments of a real `bench run` that starts the JVM
(BM25 on the tiny pair), and SIGKILL then a rerun. Each stop exits 128 + the signal with one line on
stderr, never hangs and leaves no temporary file; the rerun is byte-identical to a clean run."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.results.runs import load_run
from cli_run import clean_bm25_run

TINY = Path(__file__).parent / "data" / "tiny-pair"
BENCH = Path(sys.executable).with_name("bench")
LINE = "interrupted ({}): finished runs are kept, unfinished ones left nothing behind"
# what the JVM itself may print on stderr (Lucene's notice about this Java version), not bench's
JAVA_NOISE = re.compile(r"org\.apache\.lucene\.store\.MMapDirectory|^WARNING: You are running with Java")

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists() or not BENCH.exists(),
                                reason="needs Linux /proc and the bench console script")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> bytes:
    """run.trec of a clean in-process `bench run` of bm25 on the tiny pair."""
    return (clean_bm25_run(tmp_path_factory.mktemp("reference"), TINY / "pair.yaml") / "run.trec").read_bytes()


class Bench:
    """`bench -q run` of bm25 on the tiny pair in a subprocess, with a shared BENCH_HOME and runs."""

    def __init__(self, root: Path):
        self.home, self.runs, self.root = root / "home", root / "runs", root
        self.env = {**os.environ, "BENCH_HOME": str(self.home), "HF_HUB_OFFLINE": "1", "BENCH_THREADS": "1"}

    def start(self, *extra: str) -> subprocess.Popen:
        self.err = open(self.root / "stderr.txt", "w+")
        args = [str(BENCH), "-q", "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "bm25",
                "--runs", str(self.runs), "--no-report", *extra]
        return subprocess.Popen(args, env=self.env, stdout=subprocess.DEVNULL, stderr=self.err)

    def stop(self, proc, when, sig, timeout=120.0) -> tuple[int, list[str]]:
        """Send ``sig`` as soon as ``when(pid)`` holds; the exit status and bench's stderr lines."""
        deadline = time.time() + timeout
        while not when(proc.pid):
            assert proc.poll() is None, f"bench ended (rc {proc.returncode}) before the moment to stop it"
            assert time.time() < deadline, "the moment to stop bench never came"
            time.sleep(0.005)
        proc.send_signal(sig)
        try:
            code = proc.wait(timeout=60)  # the watchdog ends any stop within 20 s
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"bench hung after {sig.name}")
        self.err.seek(0)
        return code, [line for line in self.err.read().splitlines() if line.strip() and not JAVA_NOISE.search(line)]

    def temps(self) -> list[str]:
        return glob.glob(f"{self.home}/**/.*.tmp", recursive=True) + glob.glob(f"{self.runs}/**/.*.tmp", recursive=True)


def handlers_installed(pid: int) -> bool:
    """bench's main() has taken SIGTERM (what follows is the import of the command's modules)."""
    caught = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


def jvm_loaded(pid: int) -> bool:
    return "libjvm.so" in Path(f"/proc/{pid}/maps").read_text()


def test_sigterm_during_imports_is_one_line_and_leaves_nothing(tmp_path):
    bench = Bench(tmp_path)
    code, lines = bench.stop(bench.start(), handlers_installed, signal.SIGTERM)
    assert (code, lines) == (143, [LINE.format("SIGTERM")])
    assert not bench.runs.exists() and bench.temps() == []


def test_stops_with_the_jvm_up_unwind_and_a_killed_run_is_cleaned_by_the_rerun(tmp_path, reference):
    bench = Bench(tmp_path)
    building = f"{bench.home}/indexes/.*.tmp"

    # SIGINT while the JVM starts, in the middle of building the index
    code, lines = bench.stop(bench.start(), lambda pid: jvm_loaded(pid) and glob.glob(building), signal.SIGINT)
    assert (code, lines) == (130, [LINE.format("SIGINT")])
    assert bench.temps() == [] and not bench.runs.exists()

    # SIGTERM once the JVM runs Lucene (the index directory is being written)
    code, lines = bench.stop(bench.start(), lambda pid: jvm_loaded(pid) and glob.glob(building + "/index"),
                             signal.SIGTERM)
    assert (code, lines) == (143, [LINE.format("SIGTERM")])
    assert bench.temps() == [] and not bench.runs.exists()

    # SIGKILL cannot unwind: its temporary directory stays until the next run removes it
    code, _ = bench.stop(bench.start(), lambda pid: jvm_loaded(pid) and glob.glob(building), signal.SIGKILL)
    assert code == -signal.SIGKILL and bench.temps() != []
    rerun = bench.start()
    assert rerun.wait(timeout=300) == 0
    assert bench.temps() == []
    assert (bench.runs / "xx-en" / "bm25" / "run.trec").read_bytes() == reference

    # SIGTERM on a warm cache, with the JVM up (searching, or writing the run), in a run of other measures (so
    # other bytes): the run directory is the earlier run, untouched, or this whole one, never a mix
    run = bench.runs / "xx-en" / "bm25"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    code, lines = bench.stop(bench.start("--measures", "nDCG@10"), jvm_loaded, signal.SIGTERM)
    assert (code, lines) == (143, [LINE.format("SIGTERM")])
    assert bench.temps() == []
    after = {p.name: p.read_bytes() for p in run.iterdir()}
    stored = load_run(run)  # whole: its files are those its manifest hashes
    assert after == before or (sorted(stored.per_query.measure.unique()) == ["nDCG@10"]
                               and after["run.trec"] == reference)


WATCHDOG = """
import sys, time
from pathlib import Path
from bench.infra import interrupts, store
interrupts.install(grace_s=float(sys.argv[2]))
with store.atomic_dir(Path(sys.argv[1]) / "artifact") as tmp:
    (tmp / "half").write_text("half-written")
    # a library that swallows the interrupt, or a call that never returns. "ready" is printed inside the
    # try, so the one KeyboardInterrupt is swallowed wherever it lands (a loop with the try inside it
    # lets one through when the signal lands on the loop's own jump, and the process dies of SIGINT)
    try:
        print("ready", flush=True)
        while True:
            time.sleep(0.01)
    except KeyboardInterrupt:
        pass
    while True:  # only the first signal raises; the watchdog, or a second signal, ends this
        time.sleep(0.01)
"""


@pytest.mark.parametrize("grace,signals", [(1.0, 1), (60.0, 2)])
def test_a_stop_that_does_not_unwind_is_ended_by_the_watchdog(tmp_path, grace, signals):
    proc = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(tmp_path), str(grace)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    assert proc.stdout.readline().strip() == "ready"
    started = time.time()
    for _ in range(signals):  # a second signal ends it at once
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and err.strip() == LINE.format("SIGTERM")
    assert time.time() - started < grace + 5
    assert list(tmp_path.iterdir()) == []
    shutil.rmtree(tmp_path, ignore_errors=True)
