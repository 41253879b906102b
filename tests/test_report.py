"""bench.results.report: per-pair reports and the leaderboard from synthetic runs written with bench.results.runs."""

from __future__ import annotations

import base64
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from bench.results import report
from bench.errors import BenchError
from bench.data.pairs import PAIRS as REGISTRY
from bench.results.runs import write_run
from bench.systems import SYSTEMS, get_system, place
from bench.infra.store import COMPLETE_MARKER

N_RESAMPLES = 1000
# What bench run records of these pairs in each manifest (bench.experiment.runner, from the registry): the report
# reads it from there. (query_lang, doc_lang, low_resource, tuning)
PAIRS = {"sw-en": ("sw", "en", True, False), "ha-en": ("ha", "en", True, False),
         "en-fi": ("en", "fi", False, False), "ha-en-dev": ("ha", "en", True, True)}


def pair_info(pair: str, description: str | None = None, query_lang: str | None = None) -> dict:
    q, d, low, tuning = PAIRS.get(pair, (query_lang or pair.split("-")[0], pair.split("-")[1], False, False))
    order = REGISTRY.names()
    return {"name": pair, "description": f"the {pair} test pair" if description is None else description,
            "query_lang": q, "doc_lang": d, "dataset_id": f"test/{pair}", "low_resource": low, "tuning": tuning,
            "measures": ["AP", "nDCG@10"], "place": order.index(pair) if pair in order else None}


def make_run(root, pair: str, system: str, values: dict[str, list[float]], extra_files=None, *, query_ids=None,
             run=None, **manifest) -> None:
    """A complete run whose per-query table holds ``values`` (measure → value per query q00, q01, ..., or
    ``query_ids``) and whose run.trec holds ``run`` (default: d1 for each query); its manifest carries
    ``pair_info`` unless ``pair_info=None`` (a run written before it existed)."""
    manifest.setdefault("pair_info", pair_info(pair))
    if manifest["pair_info"] is None:
        del manifest["pair_info"]
    first = values[next(iter(values))]
    ids = list(query_ids) if query_ids is not None else [f"q{i:02d}" for i in range(len(first))]
    rows = [(ids[i], m, float(v)) for m, vs in values.items() for i, v in enumerate(vs)]
    table = pd.DataFrame(rows, columns=["query_id", "measure", "value"])
    run = run if run is not None else {qid: {"d1": 1.0} for qid in ids}
    write_run(root, pair, system, run, table, {
        "pair": pair, "system": system, "spec": {"system": system}, "dataset_id": f"test/{pair}",
        "place": place(system), "ceiling": get_system(system).ceiling if system in SYSTEMS else False,
        "data": {"qrels.tsv": "a" * 64}, "models": {}, "measures": table.groupby("measure")["value"].mean().to_dict(),
        "n_queries": len(first), "versions": {"numpy": np.__version__}, "seed": 0, "wall_time_s": 1.5,
        "started_at": "2025-03-04T05:06:07Z", "commit": "abcdef1234567890", "depth": 1000, **manifest,
    }, 1000, extra_files)


@pytest.fixture
def runs(tmp_path):
    """sw-en with bm25, mdense and a clearly better optical (30 queries), as runs/ beside reports/."""
    root = tmp_path / "runs"
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.6, 30)
    make_run(root, "sw-en", "bm25", {"AP": base, "nDCG@10": base + 0.05})
    make_run(root, "sw-en", "optical", {"AP": base + 0.3, "nDCG@10": base + 0.3})
    noise = rng.normal(0, 0.05, 30)
    make_run(root, "sw-en", "mdense",
             {"AP": np.clip(base + noise, 0, 1), "nDCG@10": np.clip(base + 0.05 + noise, 0, 1)},
             models={"encoder": "0123456789abcdef0123"})
    return root


def test_pair_report_tables(runs, tmp_path):
    reports = tmp_path / "reports"
    paths = report.write_pair_report("sw-en", runs, reports, n_resamples=N_RESAMPLES)
    assert [p.name for p in paths] == ["sw-en.perquery.csv", "sw-en.md", "sw-en.html"]
    md = (reports / "sw-en.md").read_text()
    per_query = pd.read_csv(reports / "sw-en.perquery.csv", dtype={"query_id": str})
    ap = per_query[per_query["measure"] == "AP"].groupby("system")["value"].mean()

    rows = {}
    for line in md.splitlines():
        if line.startswith("| "):  # the effectiveness table comes first
            rows.setdefault(line.split("|")[1].strip(), line)
    # systems in DESIGN order, the baseline marked, mean to 3 decimals, bold best, † on optical only
    assert [s for s in rows if s in ("bm25 (baseline)", "mdense", "optical")] == [
        "bm25 (baseline)", "mdense", "optical"]
    assert f"{ap['bm25']:.3f} [" in rows["bm25 (baseline)"]
    assert f"**{ap['optical']:.3f}** † [" in rows["optical"]
    assert "Holm-corrected across the 2 systems compared" in md
    comparison = [line for line in md.splitlines() if line.startswith("| optical | MAP |")]
    # Δ, MDE (every difference is +0.3: sd 0), p randomization at its floor (0+1)/(1000+1) shown as the bound
    # it is, t-test, Holm × 2
    assert comparison == ["| optical | MAP | +0.300 | 0.000 | 30/0/0 | < 1e-3 | 0.0e+00 | 0.002 † |"]
    assert ("p randomization < 1e-3: none of the 1,000 random sign assignments reached the observed difference, "
            "so the estimate is at its floor 1/(1,000 + 1) = 1.0e-03, a bound on p rather than its value.") in md
    assert "## Per-query differences: optical − bm25 (MAP)" in md
    assert "optical is better on 30, worse on 0 and tied on 0 of 30 queries (mean difference +0.300)" in md
    assert "runs/sw-en/bm25" in md and "abcdef123456" in md and "encoder 0123456789ab" in md
    assert "numpy " + np.__version__ in md


def test_pair_report_per_query_csv_is_long_form(runs, tmp_path):
    report.write_pair_report("sw-en", runs, tmp_path / "reports", n_resamples=N_RESAMPLES)
    table = pd.read_csv(tmp_path / "reports" / "sw-en.perquery.csv", dtype={"query_id": str})
    assert list(table.columns) == ["pair", "system", "query_id", "measure", "value"]
    assert len(table) == 3 * 2 * 30 and set(table["pair"]) == {"sw-en"}
    assert table["system"].unique().tolist() == ["bm25", "mdense", "optical"]
    stored = pd.read_csv(runs / "sw-en" / "optical" / "perquery.csv", dtype={"query_id": str})
    mine = table[table["system"] == "optical"][["query_id", "measure", "value"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, stored)


def test_pair_report_html_is_self_contained(runs, tmp_path):
    report.write_pair_report("sw-en", runs, tmp_path / "reports", n_resamples=N_RESAMPLES)
    html = (tmp_path / "reports" / "sw-en.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2  # the bar chart and the per-query differences
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert not re.search(r"https?://|<script|<link|@import|url\(", html)
    assert html.count("<img") == 2 and "<style>" in html
    assert '<span class="sig">†</span>' in html and "all 30 differences" in html


def test_default_baseline_and_explicit_baseline(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "sw-en", "optical", {"AP": [0.5, 0.6, 0.7]})
    make_run(root, "sw-en", "mdense", {"AP": [0.4, 0.4, 0.4]})
    built = report.build_pair_report("sw-en", root, n_resamples=N_RESAMPLES)
    assert built.systems == ["mdense", "optical"] and built.baseline == "mdense"  # no bm25: the first system
    assert report.build_pair_report("sw-en", root, "optical", n_resamples=N_RESAMPLES).baseline == "optical"
    with pytest.raises(BenchError, match="baseline 'bm25' has no complete run on sw-en"):
        report.build_pair_report("sw-en", root, "bm25")
    with pytest.raises(BenchError, match="no complete run of pair ha-en"):
        report.write_pair_report("ha-en", root, tmp_path / "reports")


def test_single_system_report(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "sw-en", "bm25", {"AP": [0.2, 0.4], "nDCG@10": [0.3, 0.5]})
    report.write_pair_report("sw-en", root, tmp_path / "reports", n_resamples=N_RESAMPLES)
    md = (tmp_path / "reports" / "sw-en.md").read_text()
    assert "| bm25 | 0.300 [0.200, 0.400] | 0.400 [0.300, 0.500] |" in md.replace("**", "")
    assert "no comparison" in md and "Against the baseline" not in md
    assert (tmp_path / "reports" / "sw-en.html").read_text().count("<img") == 1


def test_rebuild_after_a_run_is_deleted_half_way(runs, tmp_path, caplog):
    reports = tmp_path / "reports"
    report.write_pair_report("sw-en", runs, reports, n_resamples=N_RESAMPLES)
    (runs / "sw-en" / "optical" / COMPLETE_MARKER).unlink()  # interrupted: no completion marker
    (runs / "sw-en" / "mdense" / "perquery.csv").unlink()  # damaged: a file is gone
    report.write_pair_report("sw-en", runs, reports, n_resamples=N_RESAMPLES)
    md = (reports / "sw-en.md").read_text()
    assert "| bm25 |" in md and "optical" not in md and "mdense" not in md
    assert set(pd.read_csv(reports / "sw-en.perquery.csv")["system"]) == {"bm25"}
    assert "mdense is damaged" in caplog.text
    assert "skipping incomplete or damaged run" in caplog.text and "sw-en/optical" in caplog.text
    shutil.rmtree(runs / "sw-en" / "bm25")
    with pytest.raises(BenchError):
        report.write_pair_report("sw-en", runs, reports)
    assert "| bm25 |" in (reports / "sw-en.md").read_text()  # the previous report is intact


def test_failed_render_leaves_previous_report(runs, tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    report.write_pair_report("sw-en", runs, reports, n_resamples=N_RESAMPLES)
    before = {p.name: p.read_bytes() for p in reports.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr("bench.infra.plots.difference_chart", broken)
    with pytest.raises(RuntimeError):
        report.write_pair_report("sw-en", runs, reports, n_resamples=N_RESAMPLES)
    assert {p.name: p.read_bytes() for p in reports.iterdir()} == before  # and no temporary files left


def test_report_of_an_unregistered_pair_reads_its_manifests(tmp_path):
    root, reports = tmp_path / "runs", tmp_path / "reports"
    info = pair_info("xx-en", "my pair", "xx")
    make_run(root, "xx-en", "bm25", {"AP": [0.2, 0.4]}, pair_info=info)
    make_run(root, "xx-en", "mdense", {"AP": [0.3, 0.5]}, pair_info=info)
    report.write_pair_report("xx-en", root, reports, n_resamples=N_RESAMPLES)
    md, html = (reports / "xx-en.md").read_text(), (reports / "xx-en.html").read_text()
    for text in (md, html):
        assert "Queries in xx, documents in en" in text and "my pair" in text and "?" not in text.split("Generated")[0]


def test_html_escapes_what_the_manifest_says(tmp_path):
    root, reports = tmp_path / "runs", tmp_path / "reports"
    make_run(root, "xx-en", "bm25", {"AP": [0.2, 0.4]},
             pair_info=pair_info("xx-en", "<script>alert('x')</script> & co"))
    report.write_pair_report("xx-en", root, reports, n_resamples=N_RESAMPLES)
    html = (reports / "xx-en.html").read_text()
    assert "<script" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in html
    assert "<script>alert('x')</script> & co" in (reports / "xx-en.md").read_text()


def test_the_latest_runs_pair_info_wins_and_old_runs_fall_back(tmp_path, caplog):
    root = tmp_path / "runs"
    make_run(root, "xx-en", "bm25", {"AP": [0.2, 0.4]}, pair_info=pair_info("xx-en", "old words"),
             started_at="2025-01-01T00:00:00Z")
    make_run(root, "xx-en", "mdense", {"AP": [0.3, 0.5]}, pair_info=pair_info("xx-en", "new words"),
             started_at="2025-02-01T00:00:00Z")
    make_run(root, "xx-en", "optical", {"AP": [0.3, 0.5]}, pair_info=None, started_at="2025-03-01T00:00:00Z")
    assert report.build_pair_report("xx-en", root, n_resamples=N_RESAMPLES).description == "new words"
    assert "predate pair_info" not in caplog.text
    make_run(root, "yy-en", "bm25", {"AP": [0.2, 0.4]}, pair_info=None)
    built = report.build_pair_report("yy-en", root, n_resamples=N_RESAMPLES)
    assert (built.description, built.query_lang, built.doc_lang) == ("", "?", "?")
    assert caplog.text.count("the runs of yy-en predate pair_info") == 1


def test_reports_never_read_the_registries():
    import ast
    from pathlib import Path

    package = Path(report.__file__).parent
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not imported & {"bench.data.pairs", "bench.systems"}, source.name
    assert (package / "templates" / "pair.html.j2").is_file()


# --- leaderboard ----------------------------------------------------------------------------------


@pytest.fixture
def board_runs(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "sw-en", "bm25", {"AP": [0.2, 0.4], "nDCG@10": [0.3, 0.5], "R@100": [1, 1]})
    make_run(root, "sw-en", "optical", {"AP": [0.4, 0.6], "nDCG@10": [0.5, 0.7]})
    make_run(root, "ha-en", "bm25", {"AP": [0.1, 0.2, 0.3], "nDCG@10": [0.2, 0.2, 0.2]})
    make_run(root, "en-fi", "bm25", {"AP": [0.9], "nDCG@10": [0.9]})  # not low-resource
    make_run(root, "ha-en-dev", "bm25", {"AP": [0.7], "nDCG@10": [0.7]})  # tuning: never reported
    return root


def test_leaderboard_json_values(board_runs, tmp_path):
    paths = report.write_leaderboard(board_runs, tmp_path / "reports")
    assert [p.name for p in paths] == ["leaderboard.json", "leaderboard.md", "leaderboard.html"]
    data = json.loads((tmp_path / "reports" / "leaderboard.json").read_text())
    assert [p["pair"] for p in data["pairs"]] == ["sw-en", "ha-en", "en-fi"]  # registry order, no tuning pair
    assert data["low_resource_pairs"] == ["sw-en", "ha-en"] and data["systems"] == ["bm25", "optical"]
    entry = {(e["pair"], e["system"]): e for e in data["entries"]}
    assert entry[("sw-en", "bm25")]["scores"] == {"AP": pytest.approx(0.3), "nDCG@10": pytest.approx(0.4)}
    assert entry[("ha-en", "bm25")]["scores"]["AP"] == pytest.approx(0.2)
    assert entry[("sw-en", "optical")]["run"] == "runs/sw-en/optical"
    assert entry[("sw-en", "optical")]["commit"] == "abcdef1234567890"
    assert entry[("sw-en", "optical")]["started_at"] == "2025-03-04T05:06:07Z"
    assert entry[("ha-en", "bm25")]["n_queries"] == 3
    # bm25: (0.3 + 0.2) / 2 over sw-en and ha-en (en-fi and ha-en-dev excluded); optical lacks ha-en
    assert data["low_resource_mean"]["bm25"] == {"AP": pytest.approx(0.25), "nDCG@10": pytest.approx(0.3),
                                                 "missing_pairs": []}
    assert data["low_resource_mean"]["optical"] == {"AP": None, "nDCG@10": None, "missing_pairs": ["ha-en"]}


def test_leaderboard_markdown_and_html(board_runs, tmp_path):
    report.write_leaderboard(board_runs, tmp_path / "reports")
    md = (tmp_path / "reports" / "leaderboard.md").read_text()
    assert "| system | sw-en MAP | sw-en nDCG@10 | ha-en MAP | ha-en nDCG@10 | en-fi MAP | en-fi nDCG@10 |" in md
    # each value with its bootstrap interval; bold: the best of each column (the means included)
    assert ("| bm25 | 0.300 [0.200, 0.400] | 0.400 [0.300, 0.500] | **0.200** [0.100, 0.300] "
            "| **0.200** [0.200, 0.200] | **0.900** | **0.900** | **0.250** | **0.300** |") in md
    assert "| optical | **0.500** [0.400, 0.600] | **0.600** [0.500, 0.700] | — | — | — | — | — | — |" in md
    assert "ha-en-dev" not in md and "| sw-en | optical | runs/sw-en/optical |" in md
    assert "- [**sw-en**](sw-en.md) (low-resource): the sw-en test pair; baseline bm25" in md
    html = (tmp_path / "reports" / "leaderboard.html").read_text()
    assert "0.250" in html and "runs/sw-en/optical" in html and not re.search(r"https?://|<script|<link", html)


def test_leaderboard_marks_plugin_systems_with_their_package(board_runs, tmp_path):
    """Issue 26: a plugin system is marked (plugin) on the leaderboard as in the pair reports, with a legend
    naming its package; an external run stays marked in the sources table."""
    make_run(board_runs, "sw-en", "tiny-plug", {"AP": [0.1, 0.3], "nDCG@10": [0.2, 0.4]},
             spec={"system": "tiny-plug", "plugin": "tiny==0.1"})
    make_run(board_runs, "sw-en", "my_run", {"AP": [0.2, 0.4], "nDCG@10": [0.3, 0.5]}, external=True,
             spec={"system": "my_run", "external": True})
    report.write_leaderboard(board_runs, tmp_path / "reports")
    data = json.loads((tmp_path / "reports" / "leaderboard.json").read_text())
    assert {(e["pair"], e["system"]): e["plugin"] for e in data["entries"] if e["pair"] == "sw-en"} == {
        ("sw-en", "bm25"): None, ("sw-en", "optical"): None, ("sw-en", "tiny-plug"): "tiny==0.1",
        ("sw-en", "my_run"): None}
    md = (tmp_path / "reports" / "leaderboard.md").read_text()
    assert [line.split(" | ")[0] for line in md.splitlines() if line.startswith("| tiny-plug")] == [
        "| tiny-plug (plugin)"]
    assert "| tiny-plug (plugin) | 0.200 [0.100, 0.300] | 0.300 [0.200, 0.400] | — | — | — | — | — | — |" in md
    assert ("A pair without MAP and nDCG@10 shows its own first two measures. plugin: a system of another package "
            "(the bench.systems entry points) (tiny-plug: tiny==0.1).") in md
    assert "| sw-en | tiny-plug (plugin) | runs/sw-en/tiny-plug | 2025-03-04T05:06:07Z | abcdef123456 |" in md
    assert "| sw-en | my_run (external) | runs/sw-en/my_run |" in md and "| my_run | " in md  # unmarked in the scores
    html = (tmp_path / "reports" / "leaderboard.html").read_text()
    assert '<tr><td class="text">tiny-plug (plugin)</td><td>0.200<br>' in html
    assert "(the bench.systems entry points) (tiny-plug: tiny==0.1).</p>" in html
    board_runs_plain = tmp_path / "plain"
    make_run(board_runs_plain, "sw-en", "bm25", {"AP": [0.2, 0.4], "nDCG@10": [0.3, 0.5]})
    report.write_leaderboard(board_runs_plain, tmp_path / "r2")
    assert "plugin" not in (tmp_path / "r2" / "leaderboard.md").read_text()  # no plugin: no legend


def test_leaderboard_takes_pairs_from_the_manifests(board_runs, tmp_path):
    make_run(board_runs, "xx-en", "bm25", {"AP": [0.5], "nDCG@10": [0.5]},
             pair_info={**pair_info("xx-en", "my pair"), "low_resource": True})
    make_run(board_runs, "aa-en", "bm25", {"AP": [0.5], "nDCG@10": [0.5]}, pair_info=None)  # old: no pair_info
    make_run(board_runs, "zz-en-dev", "bm25", {"AP": [0.5], "nDCG@10": [0.5]},
             pair_info={**pair_info("zz-en-dev"), "tuning": True})
    report.write_leaderboard(board_runs, tmp_path / "reports")
    data = json.loads((tmp_path / "reports" / "leaderboard.json").read_text())
    assert [p["pair"] for p in data["pairs"]] == ["sw-en", "ha-en", "en-fi", "aa-en", "xx-en"]  # the rest by name
    assert data["low_resource_pairs"] == ["sw-en", "ha-en", "xx-en"]
    assert data["pairs"][-1] == {"pair": "xx-en", "description": "my pair", "low_resource": True,
                                 "measures": ["AP", "nDCG@10"], "baseline": None, "report": "xx-en.html"}
    assert data["pairs"][-2] == {"pair": "aa-en", "description": "", "low_resource": False,
                                 "measures": ["AP", "nDCG@10"], "baseline": None, "report": "aa-en.html"}
    html = (tmp_path / "reports" / "leaderboard.html").read_text()
    assert "my pair" in html and "zz-en-dev" not in html
    assert "my pair" in (tmp_path / "reports" / "leaderboard.md").read_text()


def test_leaderboard_after_a_run_is_deleted_half_way(board_runs, tmp_path):
    (board_runs / "ha-en" / "bm25" / COMPLETE_MARKER).unlink()
    report.write_leaderboard(board_runs, tmp_path / "reports")
    data = json.loads((tmp_path / "reports" / "leaderboard.json").read_text())
    assert ("ha-en", "bm25") not in {(e["pair"], e["system"]) for e in data["entries"]}
    assert data["low_resource_pairs"] == ["sw-en"]
    assert data["low_resource_mean"]["optical"]["AP"] == pytest.approx(0.5)


def test_empty_leaderboard(tmp_path):
    report.write_leaderboard(tmp_path / "runs", tmp_path / "reports")
    data = json.loads((tmp_path / "reports" / "leaderboard.json").read_text())
    assert data["entries"] == [] and "No complete runs." in (tmp_path / "reports" / "leaderboard.md").read_text()


def test_models_cell_names_every_model_with_its_fingerprint():
    models = {"query_encoder": {"spec": "multilingual-e5-small", "fingerprint": "0d7b02b056e606c2"},
              "doc_encoder": "fedcba9876543210aa"}
    artifacts = {"mt_model": {"spec": "/cache/mt-models/x", "fingerprint": "6c9cf30e5533999c"},
                 "student": {"recipe": "optical", "checkpoint": "f23211165519b083"}}
    assert report.models_cell(models, artifacts) == (
        "doc_encoder fedcba987654, query_encoder 0d7b02b056e6, mt_model 6c9cf30e5533, student f23211165519b083")
    assert report.models_cell({}, {}) == "—"


def test_leaderboard_intervals_and_significance_against_each_pairs_baseline(tmp_path):
    root, reports = tmp_path / "runs", tmp_path / "reports"
    base = np.linspace(0.1, 0.6, 12)
    make_run(root, "sw-en", "bm25", {"AP": base, "nDCG@10": base})
    make_run(root, "sw-en", "optical", {"AP": base + 0.3, "nDCG@10": base + 0.3})  # better on all 12 queries
    make_run(root, "sw-en", "mdense", {"AP": base + np.where(np.arange(12) % 2, 0.01, -0.01), "nDCG@10": base})
    make_run(root, "ha-en", "optical", {"AP": [0.5, 0.7], "nDCG@10": [0.5, 0.7]})  # no bm25 on ha-en:
    make_run(root, "ha-en", "bm25-psq", {"AP": [0.4, 0.4], "nDCG@10": [0.9, 0.9]})  # its first system is the baseline
    make_run(root, "en-sw-ciral", "bm25", {"nDCG@20": [0.2, 0.4], "R@100": [0.5, 0.5]},
             pair_info={**pair_info("en-sw-ciral"), "low_resource": True, "measures": ["nDCG@20", "R@100"]})
    report.write_leaderboard(root, reports, n_resamples=10_000)
    data = json.loads((reports / "leaderboard.json").read_text())
    pairs = {p["pair"]: p for p in data["pairs"]}
    assert pairs["sw-en"]["baseline"] == "bm25" and pairs["ha-en"]["baseline"] == "bm25-psq"
    assert pairs["en-sw-ciral"]["measures"] == ["nDCG@20", "R@100"]  # a pair without MAP shows its own measures
    assert data["low_resource_mean_pairs"] == {"AP": ["sw-en", "ha-en"], "nDCG@10": ["sw-en", "ha-en"]}
    entry = {(e["pair"], e["system"]): e for e in data["entries"]}
    optical = entry[("sw-en", "optical")]
    # 2**12 <= 10,000: every sign assignment is enumerated, p = 2/4096 (all + or all −); Holm × 2 (the smaller p)
    assert optical["p_holm"]["AP"] == pytest.approx(2 * 2 / 4096) and optical["significant"]["AP"] is True
    built = report.build_pair_report("sw-en", root, n_resamples=10_000)
    assert optical["p_holm"]["AP"] == pytest.approx(built.row("optical", "AP")["p_holm"])  # as the pair report says
    assert entry[("sw-en", "mdense")]["significant"]["AP"] is False
    assert "AP" not in entry[("sw-en", "bm25")]["p_holm"]  # the baseline is not tested against itself
    low, high = optical["ci"]["AP"]
    assert low < np.mean(base + 0.3) < high and (low, high) == pytest.approx(
        built.row("optical", "AP")[["ci_low", "ci_high"]].tolist())
    assert entry[("ha-en", "optical")]["p_holm"]["AP"] == pytest.approx(0.5)  # 2 queries: p = 2/4, one comparison
    md = (reports / "leaderboard.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| system |"))
    assert "| en-sw-ciral nDCG@20 | en-sw-ciral R@100 |" in header
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in md.splitlines() if line.startswith("| ")}
    # bold is the best of each column: optical on sw-en MAP and ha-en MAP, bm25-psq on ha-en nDCG@10
    assert rows["optical"][0].strip().startswith(f"**{np.mean(base + 0.3):.3f}** †")
    assert rows["optical"][2].strip().startswith("**0.600** [") and rows["bm25-psq"][3].strip().startswith("**0.900**")
    assert not rows["bm25"][0].strip().startswith("**")
    html = (reports / "leaderboard.html").read_text()
    assert '<a href="sw-en.html">sw-en *</a>' in html and '<a href="en-sw-ciral.html">' in html


def test_per_query_analysis_shows_the_query_and_its_translations(tmp_path):
    from bench.results.runs import QUERIES_FILE, format_queries

    root, reports = tmp_path / "runs", tmp_path / "reports"
    texts = [("q00", "paka mkeka", "cat mat"), ("q01", "mbwa", "dog"), ("q02", "nyumba\tkubwa", "big house"),
             ("q03", "maji", "water")]
    make_run(root, "sw-en", "bm25", {"AP": [0.1, 0.2, 0.3, 0.4]}, extra_files={QUERIES_FILE: format_queries(texts)})
    own = [(*t, {"q00": "mat of the cat", "q02": "house big"}.get(t[0])) for t in texts]
    make_run(root, "sw-en", "optical", {"AP": [0.6, 0.2, 0.1, 0.9]}, extra_files={QUERIES_FILE: format_queries(own)})
    assert (root / "sw-en" / "optical" / QUERIES_FILE).read_text().splitlines()[3] == (
        "q02\tnyumba kubwa\tbig house\thouse big")  # a tab inside a text becomes a space
    report.write_pair_report("sw-en", root, reports, n_resamples=N_RESAMPLES)
    md = (reports / "sw-en.md").read_text()
    assert "| query | text | translation | optical's translation | bm25 | optical | Δ |" in md
    table = md[md.index("### The largest gains and losses"):].split("\n\n")[1].splitlines()[2:]
    # the gains (q00 and q03, +0.5, in order), then the loss (q02); q01 is tied and not shown
    assert table == ["| q00 | paka mkeka | cat mat | mat of the cat | 0.100 | 0.600 | +0.500 |",
                     "| q03 | maji | water | — | 0.400 | 0.900 | +0.500 |",
                     "| q02 | nyumba kubwa | big house | house big | 0.300 | 0.100 | -0.200 |"]
    html = (reports / "sw-en.html").read_text()
    assert "mat of the cat" in html and "paka mkeka" in html


def test_reports_of_runs_without_queries_file_or_without_differences_have_no_analysis(runs, tmp_path):
    from bench.results.runs import QUERIES_FILE, format_queries

    report.write_pair_report("sw-en", runs, tmp_path / "reports", n_resamples=N_RESAMPLES)
    assert "query by query" not in (tmp_path / "reports" / "sw-en.md").read_text()
    texts = {QUERIES_FILE: format_queries([("q00", "a", "b"), ("q01", "c", "d")])}
    make_run(tmp_path / "tied", "sw-en", "bm25", {"AP": [0.1, 0.2]}, extra_files=texts)
    make_run(tmp_path / "tied", "sw-en", "mdense", {"AP": [0.1, 0.2]}, extra_files=texts)
    report.write_pair_report("sw-en", tmp_path / "tied", tmp_path / "r2", n_resamples=N_RESAMPLES)
    md = (tmp_path / "r2" / "sw-en.md").read_text()
    assert "tied on 2 of 2 queries" in md and "query by query" not in md


def test_the_runner_stores_the_queries_it_ran_and_the_report_shows_them(tmp_path, bench_home):
    from pathlib import Path

    from bench.data.collection.local import load_pair_file
    from bench.experiment.runner import run_systems
    from bench.results.runs import read_queries
    from bench.systems import System

    pair = load_pair_file(Path(__file__).parent / "data" / "tiny-pair" / "pair.yaml")

    def translating(ctx):  # as bm25-nmt does: its own translation of each query, beside the run
        ctx.artifacts["query_translations"] = {"q1": "cat on a mat", "q2": "the dog"}
        return {"q1": {"d1": 2.0}, "q2": {"d1": 1.0, "d2": 0.5}, "q3": {"d4": 1.0}}

    def floor(ctx):
        return {"q1": {"d2": 1.0, "d1": 0.5}, "q2": {"d2": 1.0}, "q3": {"d1": 1.0}}

    root = tmp_path / "runs"
    run_systems(pair, [System("bm25", "floor", floor, {}), System("my-mt", "translating", translating, {})], root)
    stored = read_queries(root / "xx-en" / "my-mt")
    assert stored["q1"] == {"text": "paka mkeka", "translation": "cat mat", "system_translation": "cat on a mat"}
    assert stored["q3"] == {"text": "Nyumba-KUBWA!", "translation": "big house", "system_translation": ""}
    manifest = json.loads((root / "xx-en" / "my-mt" / "manifest.json").read_text())
    assert "query_translations" not in manifest["artifacts"]  # kept beside the run, not in the manifest
    report.write_pair_report("xx-en", root, tmp_path / "reports", n_resamples=N_RESAMPLES)
    md = (tmp_path / "reports" / "xx-en.md").read_text()
    # AP by hand: bm25 q1 1/2 (d1 second), q2 1/2 (d2 of d2, d3), q3 0; my-mt q1 1, q2 (1/2)/2 (d2 second), q3 1
    assert "| q2 | mbwa | dog | the dog | 0.500 | 0.250 | -0.250 |" in md
    assert "| q1 | paka mkeka | cat mat | cat on a mat | 0.500 | 1.000 | +0.500 |" in md
    assert "| q3 | Nyumba-KUBWA! | big house | — | 0.000 | 1.000 | +1.000 |" in md


def test_runs_stored_with_other_measures_live_together(tmp_path):
    """Issue 25: a system stored with other measures than the baseline's neither crashes the report nor is
    compared on a measure the baseline lacks; the shared measure is compared as usual."""
    root = tmp_path / "runs"
    make_run(root, "sw-en", "bm25", {"AP": [0.2, 0.4, 0.6], "nDCG@10": [0.3, 0.5, 0.7]})
    make_run(root, "sw-en", "mdense", {"AP": [0.4, 0.4, 0.7], "nDCG@20": [0.5, 0.5, 0.5]})
    make_run(root, "sw-en", "optical", {"nDCG@20": [0.9, 0.9, 0.9]})
    built = report.build_pair_report("sw-en", root, n_resamples=N_RESAMPLES)
    assert built.measures == ["AP", "nDCG@10", "nDCG@20"] and built.best == "mdense"
    assert built.row("mdense", "AP")["delta"] == pytest.approx((0.2 + 0.0 + 0.1) / 3)
    assert built.row("mdense", "AP")[["wins", "ties", "losses"]].tolist() == [2, 1, 0]
    assert pd.isna(built.row("mdense", "nDCG@20")["delta"]) and built.row("optical", "AP") is None
    assert built.row("optical", "nDCG@20")["mean"] == pytest.approx(0.9)
    assert list(built.diffs.round(6)) == [0.2, 0.1, 0.0]
    paths = report.write_pair_report("sw-en", root, tmp_path / "reports", n_resamples=N_RESAMPLES)
    markdown = (tmp_path / "reports" / "sw-en.md").read_text()
    comparison = markdown.split("## Against the baseline (bm25)")[1].split("Δ: mean")[0]
    assert [line.split(" | ")[:2] for line in comparison.strip().splitlines()[2:]] == [["| mdense", "MAP"]]
    assert len(paths) == 3 and report.write_leaderboard(root, tmp_path / "reports")


def test_a_ceiling_is_never_bold_nor_the_best(tmp_path):
    """Issue 26: an oracle (human translations of the queries) is a ceiling: shown apart, never bold as the best
    of a column, in the pair report and on the leaderboard."""
    root = tmp_path / "runs"
    make_run(root, "sw-en", "bm25", {"AP": [0.2, 0.4], "nDCG@10": [0.3, 0.5]})
    make_run(root, "sw-en", "mdense", {"AP": [0.3, 0.5], "nDCG@10": [0.4, 0.6]})
    make_run(root, "sw-en", "oracle-bm25", {"AP": [0.9, 0.9], "nDCG@10": [0.9, 0.9]})
    built = report.build_pair_report("sw-en", root, n_resamples=N_RESAMPLES)
    assert built.ceilings == {"oracle-bm25"} and built.best == "mdense"
    table = report.pair_page(built, tmp_path).effectiveness
    bold = {row[0].text: [c.bold for c in row[1:]] for row in table.rows}
    assert bold == {"bm25 (baseline)": [False, False], "mdense": [True, True], "oracle-bm25 (ceiling)": [False, False]}
    from bench.results.report.leaderboard import scores_table

    board = report.leaderboard_data(root, tmp_path / "reports", n_resamples=N_RESAMPLES)
    scores = scores_table(board)
    by_name = {row[0].text: [c.bold for c in row[1:3]] for row in scores.rows}
    assert by_name["oracle-bm25 (ceiling)"] == [False, False] and by_name["mdense"] == [True, True]


# --- reports chosen by the user (issue 25): systems, baseline, measures, formats ----------------------

EIGHT = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


@pytest.fixture
def chosen_runs(tmp_path):
    """sw-en, 8 queries: optical better than bm25 on all of them, a ceiling better still, and an external run
    equal to bm25 but on the last query (+0.08)."""
    root = tmp_path / "runs"
    make_run(root, "sw-en", "bm25", {"AP": EIGHT})
    make_run(root, "sw-en", "optical", {"AP": [v + 0.2 for v in EIGHT]})
    make_run(root, "sw-en", "oracle-bm25", {"AP": [0.95] * 8})
    make_run(root, "sw-en", "my_run", {"AP": [*EIGHT[:7], 0.88]}, external=True,
             spec={"system": "my_run", "external": True})
    return root


def test_systems_narrow_the_report_and_holms_family(chosen_runs):
    full = report.build_pair_report("sw-en", chosen_runs, n_resamples=N_RESAMPLES)
    # 2**8 <= 1000: enumerated, p = 2/256 for optical and the ceiling; Holm over 3: × 3 for the first of the two
    assert full.row("optical", "AP")["p_randomization"] == pytest.approx(2 / 256)
    assert full.row("optical", "AP")["p_holm"] == pytest.approx(3 * 2 / 256)
    narrow = report.build_pair_report("sw-en", chosen_runs, systems=["optical", "bm25"], n_resamples=N_RESAMPLES)
    assert narrow.systems == ["bm25", "optical"] and narrow.baseline == "bm25"
    assert narrow.row("optical", "AP")["p_holm"] == pytest.approx(2 / 256)  # a family of one
    page = report.pair_page(narrow, chosen_runs.parent)
    assert page.family_note == "Holm's family (MAP): the 1 comparison with bm25 (optical)."
    assert report.pair_page(full, chosen_runs.parent).family_note == (
        "Holm's family (MAP): the 3 comparisons with bm25 (optical, oracle-bm25, my_run).")
    against = report.build_pair_report("sw-en", chosen_runs, "optical", systems=["bm25", "optical", "my_run"],
                                       n_resamples=N_RESAMPLES)
    assert against.baseline == "optical" and against.row("bm25", "AP")["delta"] == pytest.approx(-0.2)


def test_unknown_systems_and_baselines_are_one_line_errors(chosen_runs):
    with pytest.raises(BenchError, match=r"no run of system 'opticl' on sw-en .*") as err:
        report.build_pair_report("sw-en", chosen_runs, systems=["bm25", "opticl"])
    assert err.value.hint == "did you mean optical?"
    with pytest.raises(BenchError, match="baseline 'mdense' is not among the chosen systems \\(bm25, optical\\)"):
        report.build_pair_report("sw-en", chosen_runs, "mdense", systems=["bm25", "optical"])
    with pytest.raises(BenchError, match="baseline 'mdense' has no complete run on sw-en"):
        report.build_pair_report("sw-en", chosen_runs, "mdense")


def test_external_and_plugin_runs_are_marked_with_a_legend(chosen_runs):
    make_run(chosen_runs, "sw-en", "tiny-plug", {"AP": EIGHT}, spec={"system": "tiny-plug", "plugin": "tiny==0.1"})
    built = report.build_pair_report("sw-en", chosen_runs, n_resamples=N_RESAMPLES)
    assert built.origins == {"my_run": "external", "tiny-plug": "plugin"}
    page = report.pair_page(built, chosen_runs.parent)
    assert [row[0].text for row in page.effectiveness.rows] == [
        "bm25 (baseline)", "optical", "oracle-bm25 (ceiling)", "my_run (external)", "tiny-plug (plugin)"]
    assert page.effectiveness_note.endswith(
        " external: a run made elsewhere, scored by bench (bench eval, bench run --run); plugin: a system of another "
        "package (the bench.systems entry points) (tiny-plug: tiny==0.1).")


def test_latex_summary_table(chosen_runs, tmp_path):
    paths = report.write_pair_report("sw-en", chosen_runs, tmp_path / "reports", formats=["latex"],
                                     n_resamples=N_RESAMPLES)
    assert [p.name for p in paths] == ["sw-en.perquery.csv", "sw-en.tex"]
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["sw-en.perquery.csv", "sw-en.tex"]
    lines = (tmp_path / "reports" / "sw-en.tex").read_text().splitlines()
    assert lines[0].startswith("% bench report of sw-en, generated ") and "booktabs" in lines[0]
    assert lines[1:] == [
        r"\begin{table}[t]",
        r"\centering",
        r"\caption{sw-en: effectiveness, sw queries and en documents.}",
        r"\label{tab:sw-en}",
        r"\begin{tabular}{lr}",
        r"\toprule",
        r"system & MAP \\",
        r"\midrule",
        r"bm25 (baseline) & 0.450 \\",
        r"optical & \textbf{0.650}$^{\dagger}$ \\",  # bold: the best competitor, never the ceiling
        r"oracle-bm25 (ceiling) & 0.950$^{\dagger}$ \\",
        r"my\_run (external) & 0.460 \\",
        r"\bottomrule",
        r"\end{tabular}",
        r"\par\smallskip",
        r"{\footnotesize Mean over the 8 judged queries; bold: the best of each measure (a ceiling never is). "
        r"$^{\dagger}$ differs from the baseline bm25: paired randomization test, Holm-corrected across the 3 "
        r"systems compared, p \textless{} 0.05. Holm's family (MAP): the 3 comparisons with bm25 (optical, "
        r"oracle-bm25, my\_run). external: a run made elsewhere, scored by bench (bench eval, bench run -{}-run).\par}",
        r"\end{table}",
    ]


def test_csv_summary_table(chosen_runs, tmp_path):
    report.write_pair_report("sw-en", chosen_runs, tmp_path / "reports", formats=["md", "csv"], n_resamples=N_RESAMPLES)
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "sw-en.md", "sw-en.perquery.csv", "sw-en.summary.csv"]
    lines = (tmp_path / "reports" / "sw-en.summary.csv").read_text().splitlines()
    # p: 2/256 = 0.0078125, Holm × 3 and × 2 with the running maximum: 0.0234375 for both; my_run: d (0, ..., 0.08)
    # is reached by every sign assignment: p 1
    assert lines == ["system,role,seeds,AP,AP p_randomization,AP p_holm",
                     "bm25,baseline,1,0.45,,",
                     "optical,,1,0.65,0.0078125,0.0234375",
                     "oracle-bm25,ceiling,1,0.95,0.0078125,0.0234375",
                     "my_run,external,1,0.46,1,1"]


def test_unknown_format_is_an_error_and_nothing_is_written(chosen_runs, tmp_path):
    with pytest.raises(BenchError, match="unknown report format 'pdf'"):
        report.write_pair_report("sw-en", chosen_runs, tmp_path / "reports", formats=["md", "pdf"])
    assert not (tmp_path / "reports").exists()
    assert report.report_formats(None) == ("md", "html")
    assert report.report_formats("latex, csv,latex") == ("latex", "csv")


def test_measures_not_stored_are_scored_from_run_trec_in_memory(tmp_path):
    """Issue 25: a measure a run was not stored with is computed from its run.trec and the qrels the caller
    gives; the run's files are not touched."""
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 1}, "q3": {"d4": 1}}
    root = tmp_path / "runs"
    # bm25 ranks q1: d2, d1; q2: d2, d4, d3; q3: nothing -> AP 1/2, (1 + 2/3)/2, 0; P@1 0, 1, 0
    make_run(root, "sw-en", "bm25", {"AP": [0.5, 5 / 6, 0.0]}, query_ids=["q1", "q2", "q3"],
             run={"q1": {"d2": 2.0, "d1": 1.0}, "q2": {"d2": 3.0, "d4": 2.0, "d3": 1.0}, "q3": {}})
    # optical ranks q1: d1; q2: d3, d2; q3: d5, d4 -> AP 1, 1, 1/2; P@1 1, 1, 0 (stored with nDCG@10 only)
    make_run(root, "sw-en", "optical", {"nDCG@10": [0.9, 0.9, 0.9]}, query_ids=["q1", "q2", "q3"],
             run={"q1": {"d1": 1.0}, "q2": {"d3": 2.0, "d2": 1.0}, "q3": {"d5": 2.0, "d4": 1.0}})
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    asked = []

    def load(pair, runs):
        asked.append((pair, sorted(r.name for r in runs)))
        return qrels

    built = report.build_pair_report("sw-en", root, measures=["P@1", "AP"], qrels=load, n_resamples=N_RESAMPLES)
    assert asked == [("sw-en", ["bm25", "optical"])]  # loaded once, for the runs that need it
    assert built.measures == ["P@1", "AP"] and built.primary == "P@1"
    assert built.rescored == {"bm25": ["P@1"], "optical": ["P@1", "AP"]}
    assert built.row("bm25", "AP")["mean"] == pytest.approx((0.5 + 5 / 6 + 0) / 3)  # as stored
    assert built.row("optical", "AP")["mean"] == pytest.approx((1 + 1 + 0.5) / 3)  # by hand from run.trec
    assert built.row("bm25", "P@1")["mean"] == pytest.approx(1 / 3)
    assert built.row("optical", "P@1")["mean"] == pytest.approx(2 / 3)
    assert set(built.per_query["measure"]) == {"P@1", "AP"}  # nDCG@10 is not asked for
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    page = report.pair_page(built, tmp_path)
    assert page.effectiveness_note.endswith(
        "Scored for this report from the stored run.trec on the pair's qrels (the stored runs hold other measures "
        "and are unchanged): bm25: P@1; optical: P@1, MAP.")
    with pytest.raises(BenchError, match="run bm25 of sw-en was not stored with P@1, and no qrels were given"):
        report.build_pair_report("sw-en", root, measures=["P@1"])
    # measures every run holds need no qrels
    assert report.build_pair_report("sw-en", root, systems=["bm25"], measures=["AP"]).measures == ["AP"]


def test_query_ids_in_natural_order(tmp_path):
    root = tmp_path / "runs"
    ids = ["q10", "109", "q2", "11", "103"]
    make_run(root, "sw-en", "bm25", {"AP": [0.5] * 5}, query_ids=ids)
    make_run(root, "sw-en", "optical", {"AP": [0.7] * 5}, query_ids=ids)  # every difference ties at +0.2
    paths = report.write_pair_report("sw-en", root, tmp_path / "reports", n_resamples=N_RESAMPLES)
    table = pd.read_csv(paths[0], dtype={"query_id": str})
    assert table[table["system"] == "bm25"]["query_id"].tolist() == ["11", "103", "109", "q2", "q10"]
    built = report.build_pair_report("sw-en", root, n_resamples=N_RESAMPLES)
    assert list(built.diffs.index) == ["11", "103", "109", "q2", "q10"]  # ties broken in natural order
    md = paths[1].read_text()
    assert ("- largest gains: 11 (+0.200), 103 (+0.200), 109 (+0.200), q2 (+0.200), q10 (+0.200)") in md


def test_p_value_at_its_floor_is_shown_as_a_bound():
    assert report.fmt_p(1 / 10_001, 10_000) == "< 1e-4"
    assert report.fmt_p(1 / 1_000, 999) == "≤ 1e-3"  # the floor is exactly 1e-3
    assert report.fmt_p(2 / 10_001, 10_000) == "2.0e-04"  # above the floor: the estimate
    assert report.fmt_p(1 / 10_001) == "1.0e-04"  # not a randomization p-value: no floor
    assert report.fmt_p(2 / 16, 10_000) == "0.125"  # enumerated (exact): never at the floor


def test_power_line_shows_the_minimum_detectable_effect(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "sw-en", "bm25", {"AP": [0.5, 0.5, 0.5, 0.5]})
    make_run(root, "sw-en", "mdense", {"AP": [0.6, 0.7, 0.8, 0.9]})
    make_run(root, "sw-en", "optical", {"AP": [0.5, 0.5, 0.5, 0.52]})
    built = report.build_pair_report("sw-en", root, n_resamples=N_RESAMPLES)
    # mdense: d = (.1, .2, .3, .4), sd = sqrt(.05/3) = 0.1290994, (1.959964 + 0.841621) * sd / sqrt(4) = 0.180842
    assert built.row("mdense", "AP")["mde"] == pytest.approx(0.180842, abs=1e-6)
    # optical: d = (0, 0, 0, .02), sd = 0.01, 2.801585 * 0.01 / 2 = 0.014008
    assert built.row("optical", "AP")["mde"] == pytest.approx(0.014008, abs=1e-6)
    page = report.pair_page(built, tmp_path)
    # p (exact, 16 assignments): mdense 2/16, optical 16/16; Holm: 0.25, 1
    assert page.power == [
        "mdense: Δ +0.250, MDE 0.181 over 4 queries, p Holm 0.250; |Δ| ≥ MDE: enough queries to detect a difference "
        "this large",
        "optical: Δ +0.005, MDE 0.014 over 4 queries, p Holm 1.000; |Δ| < MDE: too few queries to detect a "
        "difference this small"]
    md = report.pair_markdown(page)
    assert "### Power (MAP)\n\n- mdense: Δ +0.250, MDE 0.181" in md
    assert "| mdense | MAP | +0.250 | 0.181 | 4/0/0 | 0.125 | " in md
    assert ("(z(1 − α/2) + z(power)) · sd(per-query differences) / √n; a p above α with |Δ| < MDE says too few "
            "queries, not no difference.") in md


def test_bench_report_makes_every_chosen_report_before_writing_any(chosen_runs, tmp_path, monkeypatch, capsys):
    from cli_run import run_main

    make_run(chosen_runs, "ha-en", "bm25", {"AP": [0.2, 0.4]})  # no optical on ha-en
    out_dir = tmp_path / "chosen"
    code, _, err = run_main(monkeypatch, capsys, "report", "--runs", str(chosen_runs), "--reports", str(out_dir),
                            "--baseline", "optical")
    assert code == 2 and err.strip() == ("error: baseline 'optical' has no complete run on ha-en (choose one of: "
                                         "bm25)")
    assert not out_dir.exists() or not any(out_dir.iterdir())  # sw-en's report was made, and not written
    code, out, err = run_main(monkeypatch, capsys, "report", "--runs", str(chosen_runs), "--reports", str(out_dir),
                              "--systems", "optical,bm25", "--format", "md")
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["ha-en.md", "ha-en.perquery.csv", "sw-en.md",
                                                         "sw-en.perquery.csv"]  # ha-en: bm25 alone
    assert out.splitlines()[-1] == ("leaderboard left as it was: --pair, --pair-file, --systems, --baseline and "
                                    "--measures choose pair reports only")
    md = (out_dir / "sw-en.md").read_text()
    assert "Holm's family (MAP): the 1 comparison with bm25 (optical)." in md and "oracle-bm25" not in md
    code, out, _ = run_main(monkeypatch, capsys, "report", "--runs", str(chosen_runs), "--reports", str(out_dir))
    assert code == 0 and (out_dir / "leaderboard.json").is_file() and (out_dir / "sw-en.html").is_file()
    html = (out_dir / "sw-en.html").read_text()
    assert "<p class=\"note\">Holm&#39;s family (MAP): the 3 comparisons with bm25" in html
    assert "<h3>Power (MAP)</h3>" in html and "my_run (external)" in html


def test_the_training_table_lists_each_student_once_with_its_time_and_memory(tmp_path):
    root = tmp_path / "runs"
    values = {"AP": [0.2, 0.4], "nDCG@10": [0.3, 0.5]}
    trained = {"recipe": "optical", "checkpoint": "f4f1c86f136f39dd",
               "training": {"pairs": 35568, "steps": 1112, "seconds_last_session": 1834.6, "resumed": True,
                            "peak_rss_mb": 7616, "peak_cuda_mb": None, "device": "cpu"}}
    make_run(root, "sw-en", "bm25", values)
    make_run(root, "sw-en", "optical", values, artifacts={"student": trained})
    make_run(root, "sw-en", "optical-maxsim", values, artifacts={"student": trained})
    make_run(root, "sw-en", "sdistill", values,  # a checkpoint from before the record: dashes
             artifacts={"student": {"recipe": "sdistill", "checkpoint": "c648be280872fd22",
                                    "training": {"pairs": 35568, "steps": 30, "seconds_last_session": 157.0}}})
    make_run(root, "sw-en", "sdistill-maxsim", values,  # resumed, with its total over both processes
             artifacts={"student": {"recipe": "sdistill", "checkpoint": "031715ae84000e81",
                                    "training": {"pairs": 35568, "steps": 1112, "seconds": 4321.4,
                                                 "seconds_last_session": 3549.8, "resumed": True, "device": "cpu",
                                                 "threads": 1}}})
    md = (tmp_path / "reports" / "sw-en.md")
    report.write_pair_report("sw-en", root, tmp_path / "reports", n_resamples=100)
    lines = md.read_text().splitlines()
    start = lines.index("## Training")
    assert lines[start + 2:start + 7] == [
        "| recipe | runs | checkpoint | bitext pairs | steps | training (s) | peak memory (MB) | device |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        "| sdistill | sdistill | c648be280872 | 35,568 | 30 | 157 | — | — |",  # the report's order of systems
        "| sdistill | sdistill-maxsim | 031715ae8400 | 35,568 | 1,112 | 4321 (resumed; 3550 in its last process) | — "
        "| cpu, 1 thread |",  # the threads it trained with, where recorded
        "| optical | optical, optical-maxsim | f4f1c86f136f | 35,568 | 1,112 | 1835 in its last process (resumed; the "
        "earlier ones unrecorded) | 7,616 | cpu |"]
    assert "<h2>Training</h2>" in (tmp_path / "reports" / "sw-en.html").read_text()
    shutil.rmtree(root / "sw-en" / "optical")
    shutil.rmtree(root / "sw-en" / "optical-maxsim")
    shutil.rmtree(root / "sw-en" / "sdistill")
    shutil.rmtree(root / "sw-en" / "sdistill-maxsim")
    report.write_pair_report("sw-en", root, tmp_path / "reports", n_resamples=100)
    assert "## Training" not in md.read_text()  # no student behind any run: no section
