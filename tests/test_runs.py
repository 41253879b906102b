import pandas as pd
import pytest

from bench.errors import BenchError
from bench.results.runs import format_trec, load_run, load_runs, read_trec, write_run


def test_format_trec_ranks_by_score_then_doc_id_descending():
    # equal scores in trec_eval's order (doc id descending), so the ranks are the order the run is scored in
    text = format_trec({"q2": {"a": 1.0, "b": 1.0, "c": 2.0}, "q1": {"x": 0.5}}, "sys", depth=2)
    assert text.splitlines() == [
        "q1 Q0 x 1 0.500000 sys",
        "q2 Q0 c 1 2.000000 sys",
        "q2 Q0 b 2 1.000000 sys",
    ]


def test_read_trec_round_trip_and_malformed_line(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text(format_trec({"q1": {"d1": 2.0, "d2": 1.0}}, "t"))
    assert read_trec(path) == {"q1": {"d1": 2.0, "d2": 1.0}}
    path.write_text("q1 Q0 d1 1 2.0 t\nq1 d2 1 1.0\n")
    with pytest.raises(BenchError, match=r"run.trec:2: not a TREC run line"):
        read_trec(path)
    path.write_text("q1 Q0 d1 1 high t\n")
    with pytest.raises(BenchError, match="is not a number"):
        read_trec(path)


def test_write_run_is_complete_or_absent(tmp_path):
    table = pd.DataFrame([("q1", "AP", 0.5)], columns=["query_id", "measure", "value"])
    manifest = {"pair": "xx-en", "system": "s"}
    write_run(tmp_path, "xx-en", "s", {"q1": {"d": 1.0}}, table, manifest, 10)
    stored = load_runs(tmp_path)
    assert [(r.pair, r.system) for r in stored] == [("xx-en", "s")]
    assert stored[0].per_query.value.tolist() == [0.5]
    (tmp_path / "xx-en" / "s" / ".complete").unlink()  # as if interrupted
    assert load_run(tmp_path / "xx-en" / "s") is None
    assert load_runs(tmp_path) == []


# --- issue 25: a real write of run B, killed mid-way, never touches run A ------------------------------------

KILLED_WRITER = r'''
import os, shutil, sys, time
from pathlib import Path

import pandas as pd

from bench.results.runs import write_run
from bench.infra import store

root, ready, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]


def wait_here():
    ready.write_text(point)  # the parent kills this process once it sees the file
    time.sleep(600)


if point == "writing":  # the per-query table half written
    real_to_csv = pd.DataFrame.to_csv

    def to_csv(self, path, **kwargs):
        text = real_to_csv(self, None, **kwargs)
        with open(path, "w") as f:
            f.write(text[:len(text) // 2])
        wait_here()
    pd.DataFrame.to_csv = to_csv
elif point == "renaming":  # every file of B written, before its directory is put in place
    store._replace_dir = lambda tmp, path: wait_here()
else:  # "removing": the first directory removed while B is committed
    shutil.rmtree = lambda *args, **kwargs: wait_here()

exec(open(Path(sys.argv[4])).read())  # builds B's arguments: RUN, TABLE, MANIFEST
write_run(root, "xx-en", "s", RUN, TABLE, MANIFEST, 1000)
'''

RUN_B = r'''
import pandas as pd
RUN = {f"q{i}": {f"d{j}": 1.0 / (j + 1) for j in range(200)} for i in range(500)}
TABLE = pd.DataFrame([(f"q{i}", "nDCG@10", 0.25 + i / 1000) for i in range(500)],
                     columns=["query_id", "measure", "value"])
MANIFEST = {"pair": "xx-en", "system": "s", "measures": ["nDCG@10"]}
'''


def _files(run) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


@pytest.mark.parametrize("point,left", [("writing", "A"), ("renaming", "A"), ("removing", "B")])
def test_a_killed_write_of_run_b_leaves_run_a_or_the_whole_run_b(tmp_path, point, left):
    """Issue 25: run A (AP) is stored; a real write_run of run B (other measures, other bytes) in another
    process is SIGKILLed at a point the child reports itself (no sleep guess): while writing B's files, after
    writing them all, or while the old copy is removed. The run directory is then byte for byte run A, or
    byte for byte the complete run B (once B is renamed in), never a mix or nothing; a rerun cleans up."""
    import signal
    import subprocess
    import sys
    import time

    table_a = pd.DataFrame([("q1", "AP", 0.5), ("q2", "AP", 0.25)], columns=["query_id", "measure", "value"])
    run_a = write_run(tmp_path / "runs", "xx-en", "s", {"q1": {"d1": 1.0}, "q2": {"d2": 2.0}}, table_a,
                      {"pair": "xx-en", "system": "s", "measures": ["AP"]}, 1000)
    before = _files(run_a)
    (tmp_path / "b.py").write_text(RUN_B)
    namespace: dict = {}
    exec(RUN_B, namespace)
    expected_b = _files(write_run(tmp_path / "expected", "xx-en", "s", namespace["RUN"], namespace["TABLE"],
                                  namespace["MANIFEST"], 1000))
    assert expected_b != before
    ready = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "runs"), str(ready), point,
                              str(tmp_path / "b.py")], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.read_text() == point, "the writer never reached the point"
        child.send_signal(signal.SIGKILL)
        assert child.wait(60) == -signal.SIGKILL
    finally:
        child.kill()
    assert _files(run_a) == (before if left == "A" else expected_b)
    [stored] = load_runs(tmp_path / "runs")
    assert stored.per_query.measure.unique().tolist() == (["AP"] if left == "A" else ["nDCG@10"])
    assert [p.name for p in (tmp_path / "runs" / "xx-en").iterdir() if not p.name.startswith(".")] == ["s"]
    table_c = pd.DataFrame([("q1", "AP", 1.0)], columns=["query_id", "measure", "value"])
    write_run(tmp_path / "runs", "xx-en", "s", {"q1": {"d1": 1.0}}, table_c, {"pair": "xx-en", "system": "s"}, 10)
    assert [p.name for p in (tmp_path / "runs" / "xx-en").iterdir()] == ["s"]  # the dead writer's temporaries gone
