"""Archived runs: a stored run without its ranking, verified as a stored run is."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.errors import BenchError
from bench.results.archive import archive_run, load_archived
from bench.results.runs import load_run, write_run

TABLE = pd.DataFrame({"query_id": ["q1", "q2", "q1", "q2"], "measure": ["AP", "AP", "nDCG@10", "nDCG@10"],
                      "value": [1.0, 0.25, 1.0, 0.5]})


def stored_run(tmp_path):
    path = write_run(tmp_path / "runs", "xx-en", "optical", {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d3": 1.0}},
                     TABLE, {"pair": "xx-en", "system": "optical", "measures": {"AP": 0.625}}, 1000, noise=0.2)
    return load_run(path)


def test_an_archived_run_keeps_its_manifest_and_per_query_values_not_its_ranking(tmp_path):
    stored = stored_run(tmp_path)
    path = archive_run(stored, tmp_path / "archive")
    assert path == tmp_path / "archive" / "xx-en" / "optical+noise0.2"
    assert sorted(p.name for p in path.iterdir()) == [".complete", "manifest.json", "manifest.sha256", "perquery.csv"]
    back = load_archived(path)
    assert (back.pair, back.system, back.seed, back.noise) == ("xx-en", "optical", 0, 0.2)
    assert back.manifest == stored.manifest
    pd.testing.assert_frame_equal(back.per_query, TABLE)
    # read as a stored run, it is one whose ranking is gone: not a run to report or reuse
    assert load_run(path) is None
    assert load_archived(tmp_path / "archive" / "xx-en" / "sdistill") is None


def test_a_changed_archived_run_is_refused(tmp_path):
    path = archive_run(stored_run(tmp_path), tmp_path / "archive")
    text = (path / "perquery.csv").read_text()
    (path / "perquery.csv").write_text(text.replace("0.25", "0.35"))
    with pytest.raises(BenchError, match=r"refusing run .*optical\+noise0.2: perquery.csv has sha256"):
        load_archived(path)
    (path / "perquery.csv").write_text(text)
    assert load_archived(path) is not None
    (path / "manifest.json").write_text((path / "manifest.json").read_text().replace("0.625", "0.725"))
    with pytest.raises(BenchError, match="its manifest.json was changed after the run was written"):
        load_archived(path)


def test_archiving_a_run_again_replaces_it(tmp_path):
    stored = stored_run(tmp_path)
    archive_run(stored, tmp_path / "archive")
    table = TABLE.assign(value=[0.5, 0.5, 0.5, 0.5])
    again = load_run(write_run(tmp_path / "runs", "xx-en", "optical", {"q1": {"d2": 1.0}, "q2": {"d3": 1.0}}, table,
                               {"pair": "xx-en", "system": "optical", "measures": {"AP": 0.5}}, 1000, noise=0.2))
    path = archive_run(again, tmp_path / "archive")
    assert load_archived(path).per_query["value"].tolist() == [0.5] * 4
    assert [p.name for p in path.parent.iterdir()] == ["optical+noise0.2"]  # no temporary left beside it
