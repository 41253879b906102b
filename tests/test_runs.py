import pandas as pd
import pytest

from bench.errors import BenchError
from bench.results.runs import format_trec, load_run, load_runs, read_trec, write_run


def test_format_trec_ranks_by_score_then_doc_id():
    text = format_trec({"q2": {"b": 1.0, "a": 1.0, "c": 2.0}, "q1": {"x": 0.5}}, "sys", depth=2)
    assert text.splitlines() == [
        "q1 Q0 x 1 0.500000 sys",
        "q2 Q0 c 1 2.000000 sys",
        "q2 Q0 a 2 1.000000 sys",
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
