"""Build locks (issue 15): processes sharing one BENCH_HOME build each artifact once; stale locks (a dead
or reused pid on this host, a stopped heartbeat from another host) are broken, by one waiter only; a
SIGKILLed builder leaves no complete artifact and the rerun completes it; two `bench run` started
together build one index and one translation table and write identical runs, one waiting for the other.
Issue 25: a lock whose owner cannot be identified is judged by its heartbeat, never waited on forever, and
a waiter says at WARNING who holds the lock, since when and how to break it. Timings are generous bounds
that a busy 2-core machine keeps; that one process waited for another is asserted from what it logged."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.infra import interrupts, locks, store, tempfiles

TINY = Path(__file__).parent / "data" / "tiny-pair"
BENCH = Path(sys.executable).with_name("bench")
KEY = {"artifact": "thing", "version": 1}
SPAWN = multiprocessing.get_context("spawn")


def write_lock(artifact: Path, mtime_age: float = 0.0, **record) -> Path:
    """A lock file of ``artifact`` owned by ``record`` (host/pid/start), its heartbeat ``mtime_age`` s old."""
    lock = locks.lock_path(artifact)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"host": locks.HOST, "created": time.time(), "token": "theirs", **record}))
    if mtime_age:
        os.utime(lock, (time.time() - mtime_age, time.time() - mtime_age))
    return lock


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def record_logs(names=("bench.infra.store", "bench.infra.downloads", "bench.infra.locks"), waiting=None) -> list[str]:
    """Capture the INFO lines of ``names`` in a list (in a spawned child, where caplog is not); set the event
    ``waiting`` (if given) once a "waiting for" line is logged."""
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            if record.levelno == logging.INFO:
                messages.append(record.getMessage())
                if waiting is not None and messages[-1].startswith("waiting for"):
                    waiting.set()

    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(Keep())
    return messages


# --- (a) two processes, one build ------------------------------------------------------------------------


def _build_thing(counter: str, barrier, waiting, results) -> None:
    messages = record_logs(waiting=waiting)

    def build(tmp: Path) -> None:
        with open(counter, "a") as f:
            f.write(f"{os.getpid()}\n")
        waiting.wait(60)  # the other process waits for this build (however slow its start on a busy machine)
        time.sleep(1.0)
        (tmp / "value").write_text("42")

    barrier.wait()
    path = store.cached_build("things", KEY, build)
    results.put((os.getpid(), str(path), (path / "value").read_text(), store.is_complete(path), messages))


def test_two_processes_build_one_artifact_once_and_both_get_it(bench_home, tmp_path):
    counter = tmp_path / "builds.txt"
    barrier, waiting, results = SPAWN.Barrier(2), SPAWN.Event(), SPAWN.Queue()
    procs = [SPAWN.Process(target=_build_thing, args=(str(counter), barrier, waiting, results)) for _ in range(2)]
    for p in procs:
        p.start()
    got = sorted(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    builder = int(counter.read_text())  # exactly one line: one build
    expected = store.artifact_dir("things", KEY)
    assert [(path, value, complete) for _, path, value, complete, _ in got] == [(str(expected), "42", True)] * 2
    fp = expected.name
    by_pid = {pid: messages for pid, *_, messages in got}
    waiter = next(pid for pid in by_pid if pid != builder)
    [built] = by_pid[builder]
    assert re.fullmatch(rf"built things {fp} in \d+\.\d s", built) and float(built.split()[-2]) >= 1.0
    assert by_pid[waiter] == [f"waiting for things {fp}: being built by pid {builder} on host {locks.HOST}",
                              f"reusing things {fp}, built by another process meanwhile"]
    assert sorted(p.name for p in expected.parent.iterdir()) == [fp]  # no lock, no temporary left


# --- (b) stale locks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("owner", ["dead", "reused"])
def test_a_lock_of_a_dead_or_reused_pid_on_this_host_is_broken(bench_home, caplog, owner):
    artifact = store.artifact_dir("things", KEY)
    if owner == "dead":
        pid, start = dead_pid(), 12345
    else:  # a live process, but not the one that made the lock: it started at another time
        pid, start = os.getppid(), locks._start_ticks(os.getppid()) + 1
    lock = write_lock(artifact, pid=pid, start=start)
    builds = []
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="bench"):
        path = store.cached_build("things", KEY, lambda tmp: builds.append((tmp / "v").write_text("1")))
    assert time.monotonic() - started < 10  # at once: not after the 60 s of a heartbeat's timeout
    assert builds == [1] and store.is_complete(path) and not lock.exists()
    broke = [r.getMessage() for r in caplog.records if r.getMessage().startswith("breaking")]
    assert broke == [f"breaking the stale lock {lock} of pid {pid} on host {locks.HOST}: pid {pid} is not running"]


def test_a_live_owner_on_this_host_is_waited_for_until_it_dies(tmp_path):
    owner = subprocess.Popen(["sleep", "30"])
    try:
        lock = write_lock(tmp_path / "artifact", pid=owner.pid, start=locks._start_ticks(owner.pid))
        acquired = threading.Event()

        def take():
            with locks.build_lock(tmp_path / "artifact", "thing", poll_s=0.02):
                acquired.set()

        waiter = threading.Thread(target=take)
        waiter.start()
        assert not acquired.wait(0.6) and lock.exists()  # its owner runs: waiting
    finally:
        owner.kill()
        owner.wait()
    assert acquired.wait(30)
    waiter.join(30)
    assert not lock.exists()


def test_another_hosts_lock_is_waited_for_while_its_heartbeat_is_fresh_then_broken(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("BENCH_LOCK_STALE_S", "1")
    monkeypatch.setattr(locks, "WAIT_WARN_S", 600.0)  # only the INFO lines here (the WARNING: the tests below)
    artifact = tmp_path / "artifact"
    lock = write_lock(artifact, host="elsewhere", pid=4242, start=1)
    # the other host's owner beats until 1.2 s from now and then dies: its last heartbeat is written ahead, so
    # no thread has to be scheduled on time (a busy machine cannot make the lock look stale early)
    started = time.time()
    os.utime(lock, (started + 1.2, started + 1.2))
    with caplog.at_level(logging.INFO, logger="bench.infra.locks"):
        with locks.build_lock(artifact, "thing", poll_s=0.02):
            waited = time.time() - started
            mine = json.loads(lock.read_text())
    assert 2.2 <= waited < 30.0  # the last heartbeat at 1.2 s, then 1 s without one (upper bound: a slow machine)
    assert (mine["host"], mine["pid"], mine["start"]) == (locks.HOST, os.getpid(), locks._start_ticks(os.getpid()))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "waiting for thing: being built by pid 4242 on host elsewhere"
    broke = rf"breaking the stale lock {re.escape(str(lock))} of pid 4242 on host elsewhere: no heartbeat for \d+ s"
    assert len(lines) == 2 and re.fullmatch(broke, lines[1])

    # a heartbeat already older than the timeout (given as an argument): broken at once
    write_lock(artifact, host="elsewhere", pid=4242, mtime_age=30)
    started = time.monotonic()
    with locks.build_lock(artifact, "thing", stale_s=10):
        assert time.monotonic() - started < 5  # at once: not after the 10 s of the timeout


def test_the_holder_keeps_its_heartbeat_registers_its_lock_and_removes_only_its_own(tmp_path):
    artifact = tmp_path / "artifact"
    with locks.build_lock(artifact, "thing", stale_s=0.2) as lock:  # heartbeat every 0.05 s
        assert lock == tmp_path / "artifact.lock" and lock in tempfiles.live_temps()
        os.utime(lock, (time.time() - 100, time.time() - 100))
        deadline = time.monotonic() + 10
        while time.time() - lock.stat().st_mtime > 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert time.time() - lock.stat().st_mtime < 10  # touched again by the heartbeat
    assert not lock.exists() and lock not in tempfiles.live_temps()

    with locks.build_lock(artifact, "thing") as lock:  # broken and taken by another while held
        write_lock(artifact, host="elsewhere", pid=7)
    assert json.loads(lock.read_text())["pid"] == 7


def _exclusive(path: str, log_file: str, barrier) -> None:
    barrier.wait()
    with locks.build_lock(Path(path), "thing", poll_s=0.005):
        with open(log_file, "a") as f:
            f.write(f"in {os.getpid()}\n")
        time.sleep(0.1)
        with open(log_file, "a") as f:
            f.write(f"out {os.getpid()}\n")


def test_waiters_breaking_one_stale_lock_at_once_hold_it_one_at_a_time(tmp_path):
    artifact = tmp_path / "artifact"
    write_lock(artifact, pid=dead_pid(), start=1)
    log_file = tmp_path / "holders.txt"
    barrier = SPAWN.Barrier(3)
    procs = [SPAWN.Process(target=_exclusive, args=(str(artifact), str(log_file), barrier)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    events = [line.split() for line in log_file.read_text().splitlines()]
    assert [e[0] for e in events] == ["in", "out"] * 3  # never two holders at once
    assert [e[1] for e in events[::2]] == [e[1] for e in events[1::2]]
    assert sorted(int(e[1]) for e in events[::2]) == sorted(p.pid for p in procs)
    assert list(tmp_path.iterdir()) == [log_file]


def test_sigterm_while_waiting_for_a_lock_stops_the_wait_and_keeps_the_owners_lock(tmp_path):
    lock = write_lock(tmp_path / "artifact", pid=os.getppid(), start=locks._start_ticks(os.getppid()))
    timer = threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGTERM))
    try:
        interrupts.install()
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            with locks.build_lock(tmp_path / "artifact", "thing"):
                pytest.fail("took a lock whose owner runs")
        assert time.monotonic() - started < 10 and interrupts.received() == signal.SIGTERM
    finally:
        timer.cancel()
        interrupts.uninstall()
    assert json.loads(lock.read_text())["token"] == "theirs"


def test_writers_committing_one_directory_at_once_all_succeed(tmp_path):
    """Two `bench run` into one runs directory commit the same run directory: the one already there is
    renamed aside whole, never half-removed under the other (which made 15% of these commits fail)."""
    errors, target = [], tmp_path / "run"

    def commit(writer: int) -> None:
        for n in range(40):
            try:
                with store.atomic_dir(target) as tmp:
                    (tmp / "who").write_text(f"{writer} {n}")
            except OSError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and [p.name for p in tmp_path.iterdir()] == ["run"]
    assert sorted(p.name for p in target.iterdir()) == [".complete", "who"]
    assert re.fullmatch(r"[012] 39", (target / "who").read_text())  # one writer's last commit, whole


# --- (c) a builder killed in the middle of its build ---------------------------------------------------

KILLED_BUILDER = """
import sys, time
from bench.infra import store
def build(tmp):
    (tmp / "half").write_text("half-written")
    print("building", flush=True)
    time.sleep(60)
store.cached_build("things", {"artifact": "thing", "version": 1}, build)
"""


def test_a_sigkilled_builder_leaves_no_artifact_and_the_rerun_completes_it(bench_home):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BUILDER], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "BENCH_HOME": str(bench_home)})
    assert proc.stdout.readline().strip() == "building"
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL
    artifact = store.artifact_dir("things", KEY)
    lock = locks.lock_path(artifact)
    left = sorted(p.name for p in artifact.parent.iterdir())
    assert not artifact.exists() and json.loads(lock.read_text())["pid"] == proc.pid
    assert len(left) == 2 and left[0].startswith(f".{artifact.name}.") and left[0].endswith(".tmp")

    builds = []
    path = store.cached_build("things", KEY, lambda tmp: builds.append((tmp / "value").write_text("42")))
    assert builds == [2] and (path / "value").read_text() == "42" and store.is_complete(path)
    assert sorted(p.name for p in artifact.parent.iterdir()) == [artifact.name]  # lock and temp gone
    assert sorted(p.name for p in path.iterdir()) == [".complete", "key.json", "value"]


# --- (d) two `bench run` at once on one empty BENCH_HOME -----------------------------------------------

BITEXT = [("paka mkubwa", "big cat"), ("mbwa mdogo", "small dog"), ("nyumba ya paka", "house of the cat"),
          ("mbwa na paka", "dog and cat"), ("mkeka mkubwa", "big mat"), ("nyumba kubwa sana", "very big house")]


def _stop_a_holder(home: Path, procs: list[subprocess.Popen]) -> tuple[int, Path] | None:
    """SIGSTOP the one of ``procs`` that holds an index's build lock under ``home``, so that the other must wait
    for it: (its pid, the lock); None if both ended before one was caught holding it."""
    pids = {p.pid for p in procs}

    def holder(lock: Path) -> int | None:
        try:
            return json.loads(lock.read_text())["pid"]
        except (OSError, ValueError, KeyError):
            return None  # being written, or released just now

    while any(p.poll() is None for p in procs):
        for lock in (home / "indexes").glob("*.lock"):
            pid = holder(lock)
            if pid not in pids:
                continue
            os.kill(pid, signal.SIGSTOP)
            if holder(lock) == pid:  # still its lock: it is stopped holding it
                return pid, lock
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.005)
    return None


@pytest.mark.skipif(not BENCH.exists(), reason="needs the bench console script")
def test_two_bench_runs_started_together_build_each_artifact_once(tmp_path):
    """The builder of the index is stopped (SIGSTOP) while it holds the index's lock until the other `bench run`
    says it waits for it: the two runs overlap whatever the machine's load, and one is seen waiting."""
    pair = tmp_path / "pair"
    shutil.copytree(TINY, pair)
    (pair / "bitext.tsv").write_text("".join(f"{f}\t{e}\n" for f, e in BITEXT))
    with open(pair / "pair.yaml", "a") as f:
        f.write("bitext: bitext.tsv\n")
    home = tmp_path / "home"
    env = {**os.environ, "BENCH_HOME": str(home), "HF_HUB_OFFLINE": "1", "BENCH_THREADS": "1"}
    procs, err_files = [], [tmp_path / f"stderr{i}.txt" for i in range(2)]
    for i in range(2):
        args = [str(BENCH), "-v", "run", "--pair-file", str(pair / "pair.yaml"), "--systems", "bm25,bm25-psq",
                "--runs", str(tmp_path / f"runs{i}"), "--no-report"]
        with open(err_files[i], "w") as err:
            procs.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True))
    stopped = None
    try:
        stopped = _stop_a_holder(home, procs)
        if stopped:
            holder, lock = stopped
            [(waiter, waiter_err)] = [(p, e) for p, e in zip(procs, err_files) if p.pid != holder]
            deadline = time.monotonic() + 240
            while (f"waiting for indexes {lock.stem}" not in waiter_err.read_text() and waiter.poll() is None
                   and time.monotonic() < deadline):
                time.sleep(0.05)
    finally:
        if stopped:
            os.kill(stopped[0], signal.SIGCONT)
        for p in procs:
            try:
                p.wait(timeout=300)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    errs = [e.read_text() for e in err_files]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert stopped, f"neither run was seen holding an index's lock: {errs}"

    holder, lock = stopped  # one run waited for the other: it says so, then reuses what the other built
    fp = lock.stem
    [(holder_err, waiter_err)] = [(errs[i], errs[1 - i]) for i, p in enumerate(procs) if p.pid == holder]
    assert f"waiting for indexes {fp}: being built by pid {holder} on host {locks.HOST}" in waiter_err, errs
    assert f"reusing indexes {fp}, built by another process meanwhile" in waiter_err, errs
    assert re.search(rf"built indexes {fp} in \d+\.\d s", holder_err), errs
    for system in ("bm25", "bm25-psq"):
        first, second = ((tmp_path / f"runs{i}" / "xx-en" / system / "run.trec").read_bytes() for i in range(2))
        assert first == second and first.count(b"\n") >= 3
    built = [m.groups() for err in errs for m in re.finditer(r"built (\S+) (\S+) in \d+\.\d s", err)]
    assert len(built) == len(set(built))  # every artifact built once, by one of the two
    kinds = [kind for kind, _ in built]
    assert kinds.count("indexes") == 1 and kinds.count("translation-tables") == 1, built
    for kind in ("indexes", "translation-tables"):
        entries = list((home / kind).iterdir())
        assert [(p.name, p.is_dir()) for p in entries] == [(fp, True) for k, fp in built if k == kind]


# --- (e) issue 25: no lock is waited on forever, and no wait is silent ----------------------------------


def test_a_live_local_pid_without_a_start_time_is_judged_by_its_heartbeat_never_waited_on_forever(
        tmp_path, monkeypatch, caplog):
    """A lock of this host naming a live pid but no start time does not identify its owner (the pid may be
    reused): like another host's lock, it is taken over once its heartbeat is older than BENCH_LOCK_STALE_S."""
    monkeypatch.setenv("BENCH_LOCK_STALE_S", "0.5")
    owner = subprocess.Popen(["sleep", "60"])
    try:
        record = {"host": locks.HOST, "pid": owner.pid}
        assert locks.stale_reason(record, 0.2, 0.5) is None  # its heartbeat is fresh: waited for
        assert locks.stale_reason(record, 0.8, 0.5) == "no heartbeat for 1 s"
        identified = {**record, "start": locks._start_ticks(owner.pid)}
        assert locks.stale_reason(identified, 1e6, 0.5) is None  # identified and running: waited for
        for unidentified in (None, {"host": locks.HOST, "pid": str(owner.pid)}, {"host": locks.HOST}):
            assert locks.stale_reason(unidentified, 0.2, 0.5) is None
            assert locks.stale_reason(unidentified, 0.8, 0.5) == "no heartbeat for 1 s"
        dead = dead_pid()  # a pid that runs nothing: stale at once, start time or not
        assert locks.stale_reason({"host": locks.HOST, "pid": dead}, 0.0, 0.5) == f"pid {dead} is not running"

        artifact = tmp_path / "artifact"
        lock = write_lock(artifact, pid=owner.pid)  # no "start"
        written = lock.stat().st_mtime
        taken = {}

        def take():
            with locks.build_lock(artifact, "thing", poll_s=0.02):
                taken["at"] = time.time()
                taken["mine"] = json.loads(lock.read_text())

        with caplog.at_level(logging.INFO, logger="bench.infra.locks"):
            waiter = threading.Thread(target=take, daemon=True)
            waiter.start()
            waiter.join(60)  # bounded: it must not wait forever
        assert not waiter.is_alive() and owner.poll() is None  # taken while the pid still runs
    finally:
        owner.kill()
        owner.wait()
    assert taken["at"] - written >= 0.5  # after the rule's time, not at once
    assert (taken["mine"]["host"], taken["mine"]["pid"]) == (locks.HOST, os.getpid())
    lines = [r.getMessage() for r in caplog.records if r.name == "bench.infra.locks"]
    assert lines[0] == f"waiting for thing: being built by pid {owner.pid} on host {locks.HOST}"
    broke = rf"breaking the stale lock {re.escape(str(lock))} of pid {owner.pid} on host {re.escape(locks.HOST)}: "
    assert [line for line in lines if line.startswith("breaking")] == [lines[-1]]
    assert re.fullmatch(broke + r"no heartbeat for \d+ s", lines[-1])
    assert not lock.exists()


def test_a_waiter_says_at_warning_once_who_holds_the_lock_since_when_and_how_to_break_it(
        tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(locks, "WAIT_WARN_S", 0.3)  # "a few seconds", made short
    owner = subprocess.Popen(["sleep", "60"])
    artifact = tmp_path / "an artifact"  # a space: the command quotes the path
    acquired = threading.Event()

    def take():
        with locks.build_lock(artifact, "thing", poll_s=0.02):
            acquired.set()

    def warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "bench.infra.locks" and r.levelno == logging.WARNING]

    try:
        lock = write_lock(artifact, pid=owner.pid, start=locks._start_ticks(owner.pid))
        created = json.loads(lock.read_text())["created"]
        with caplog.at_level(logging.WARNING, logger="bench.infra.locks"):
            waiter = threading.Thread(target=take, daemon=True)
            waiter.start()
            deadline = time.monotonic() + 60
            while not warnings() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert warnings() and not acquired.is_set()
            time.sleep(0.5)  # many more polls: still one line
            owner.kill()
            owner.wait()
            assert acquired.wait(30)
            waiter.join(30)
    finally:
        owner.kill()
        owner.wait()
    [line] = [r.getMessage() for r in warnings()]
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
    assert re.match(r"waiting \d+ s for thing: ", line), line
    assert f"its lock {lock} is held by pid {owner.pid} on host {locks.HOST} since {since} (" in line, line
    assert "bench waits as long as that process runs" in line, line
    assert line.endswith(f"If that process is gone (on {locks.HOST}: ps -p {owner.pid}), break the lock: "
                         f"rm {shlex.quote(str(lock))}"), line
