"""The noise sweep: rate parsing, the table and plot, and a real sweep of a trained system on a tiny pair."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.errors import BenchError
from bench.experiment.sweep import noise_sweep, parse_rates, write_sweep
from bench.systems import parse_systems
from test_dense import write_tiny_model
from test_distilled_systems import pair_with_bitext


pytestmark = pytest.mark.usefixtures("one_thread")


def test_rates_are_sorted_distinct_fractions():
    assert parse_rates("0.4, 0,0.2") == [0.0, 0.2, 0.4]
    for bad in ("", "0,1", "0,0", "a,0.2", "-0.1"):
        with pytest.raises(BenchError, match="--rates"):
            parse_rates(bad)


def test_table_markdown_and_plot(tmp_path):
    table = pd.DataFrame([
        {"pair": "sw-en", "system": s, "rate": r, "measure": m, "value": v}
        for s, base in (("optical", 0.6), ("bm25-psq", 0.5)) for r in (0.0, 0.2, 0.4)
        for m, v in (("AP", base - r / 4), ("nDCG@10", base - r / 2))
    ])
    paths = write_sweep("sw-en", table, {"mdense": {"AP": 0.59, "nDCG@10": 0.62}}, tmp_path)
    assert [p.name for p in paths] == ["sw-en.noise.csv", "sw-en.noise.md", "sw-en.noise.png"]
    assert pd.read_csv(paths[0]).equals(table)
    md = paths[1].read_text()
    assert "| optical | 0.600 | 0.550 | 0.500 | -0.100 |" in md  # MAP falls by 0.4 / 4
    assert "| bm25-psq | 0.500 | 0.400 | 0.300 | -0.200 |" in md  # nDCG@10 falls by 0.4 / 2
    assert "| mdense (reference) | 0.590 | 0.590 | 0.590 | +0.000 |" in md
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_retrains_at_each_rate(bench_home, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    pair = pair_with_bitext(tmp_path)
    paths = noise_sweep(pair, [0.0, 0.5], parse_systems("sdistill"), parse_systems("mdense"), tmp_path / "runs",
                        tmp_path / "reports", options={"encoder": str(model), "distill_steps": 2})
    table = pd.read_csv(paths[0])
    assert sorted(table[table["measure"] == "AP"]["rate"]) == [0.0, 0.5]
    # the uniform run names: rate 0 is the plain run, the others carry +noise<rate> (bench.results.runs.run_name)
    manifests = [json.loads((tmp_path / "runs" / pair.name / name / "manifest.json").read_text())
                 for name in ("sdistill", "sdistill+noise0.5")]
    assert [m["options"]["bitext_noise"] for m in manifests] == [0.0, 0.5]
    assert [(m["run"], m["variant"]) for m in manifests] == [("sdistill", {"seed": 0, "bitext_noise": 0.0}),
                                                             ("sdistill+noise0.5", {"seed": 0, "bitext_noise": 0.5})]
    assert sorted(p.name for p in (tmp_path / "runs" / pair.name).iterdir()) == [
        "mdense", "sdistill", "sdistill+noise0.5"]
    # half of the 8 pairs misaligned: another bitext, another student
    assert manifests[0]["artifacts"]["bitext"]["fingerprint"] != manifests[1]["artifacts"]["bitext"]["fingerprint"]
    assert manifests[0]["artifacts"]["student"]["checkpoint"] != manifests[1]["artifacts"]["student"]["checkpoint"]
    assert (tmp_path / "runs" / pair.name / "mdense" / "run.trec").exists()
    assert "mdense (reference)" in paths[1].read_text()
