"""Issue 26: a stored run is reused only when everything that determines it is the same (its identity), by one
rule for `bench run`, `bench grid` and the API; and a plan says what its builds will cost before they start."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bench.experiment import runner
from bench.infra import devices, digests, rates, store
from cli_run import run_main

TINY = Path(__file__).parent / "data" / "tiny-pair"
IDENTITY_LOG = "bench.experiment.identity"


def pair_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "pair"
    shutil.copytree(TINY, folder)
    return folder / "pair.yaml"


@pytest.fixture
def writes(monkeypatch) -> list[str]:
    """The runs written (by system), however they are started."""
    written = []
    real = runner.write_run

    def recording(runs_root, pair, system, *args, **kwargs):
        written.append(system)
        return real(runs_root, pair, system, *args, **kwargs)

    monkeypatch.setattr(runner, "write_run", recording)
    return written


def bm25_run(monkeypatch, capsys, pair: Path, runs: Path, *flags: str) -> tuple[int, str, str]:
    return run_main(monkeypatch, capsys, "run", "--pair-file", str(pair), "--systems", "bm25", "--runs", str(runs),
                    "--no-report", *flags)


def identity_lines(caplog) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.name == IDENTITY_LOG]
    caplog.clear()
    return lines


def files(run: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(run.iterdir())}


# --- the rule ------------------------------------------------------------------------------------------------


def test_an_identical_run_is_reused_and_force_runs_it_again(monkeypatch, capsys, caplog, bench_home, tmp_path,
                                                            writes):
    pair, runs = pair_copy(tmp_path), tmp_path / "runs"
    caplog.set_level(logging.WARNING)
    code, out, err = bm25_run(monkeypatch, capsys, pair, runs)
    assert code == 0, err
    assert writes == ["bm25"] and identity_lines(caplog) == []
    run = runs / "xx-en" / "bm25"
    before = files(run)

    code, out2, err = bm25_run(monkeypatch, capsys, pair, runs)
    assert code == 0, err
    assert writes == ["bm25"]  # nothing written again: the run file's bytes and times are those of the first run
    assert files(run) == before
    assert identity_lines(caplog) == ["xx-en/bm25: reusing the stored run (identical inputs); --force recomputes"]
    assert out2.splitlines()[1:4] == out.splitlines()[1:4]  # the same table (its stored means and time)

    code, _, err = bm25_run(monkeypatch, capsys, pair, runs, "--force")
    assert code == 0, err
    assert writes == ["bm25", "bm25"] and identity_lines(caplog) == []
    assert files(run)["run.trec"][0] == before["run.trec"][0]  # the same run, written again


def test_a_changed_option_or_qrels_file_runs_it_again(monkeypatch, capsys, caplog, bench_home, tmp_path, writes):
    """PyTerrier's issue 304: a saved run answered for a changed qrels file. Here it is run again, and replaced."""
    pair, runs = pair_copy(tmp_path), tmp_path / "runs"
    caplog.set_level(logging.WARNING)
    assert bm25_run(monkeypatch, capsys, pair, runs)[0] == 0
    manifest = json.loads((runs / "xx-en" / "bm25" / "manifest.json").read_text())
    assert manifest["measures"]["AP"] == pytest.approx((1 + 1 / 2 + 1) / 3)  # q2 has 2 relevant documents, finds one
    code, _, err = bm25_run(monkeypatch, capsys, pair, runs, "--bm25-k1", "1.2")
    assert code == 0, err
    assert writes == ["bm25", "bm25"]
    assert identity_lines(caplog) == ["xx-en/bm25: the stored run was made with other inputs (the run options, the "
                                      "system's spec): running it again"]
    manifest = json.loads((runs / "xx-en" / "bm25" / "manifest.json").read_text())
    assert manifest["identity"]["options"]["bm25_k1"] == 1.2 and manifest["identity"]["spec"]["bm25_k1"] == 1.2

    qrels = pair.parent / "qrels.txt"
    qrels.write_text(qrels.read_text().replace("q2 0 d3 1\n", ""))  # d3 is no longer relevant to q2
    code, _, err = bm25_run(monkeypatch, capsys, pair, runs, "--bm25-k1", "1.2")
    assert code == 0, err
    assert writes == ["bm25"] * 3
    assert identity_lines(caplog) == ["xx-en/bm25: the stored run was made with other inputs (the collection's files):"
                                      " running it again"]
    manifest = json.loads((runs / "xx-en" / "bm25" / "manifest.json").read_text())
    assert manifest["identity"]["collection"]["sources"]["qrels"] == digests.sha256_file(qrels)
    assert manifest["measures"]["AP"] == pytest.approx((1 + 0 + 1) / 3)  # q2's one relevant document is not found
    code, _, err = bm25_run(monkeypatch, capsys, pair, runs, "--bm25-k1", "1.2")
    assert code == 0 and writes == ["bm25"] * 3  # and that one is reused


def test_the_grid_skips_by_the_same_rule(monkeypatch, capsys, caplog, bench_home, tmp_path, writes):
    """A run stored by `bench run` is a done cell of the grid; after a change of the qrels it is not."""
    from bench.experiment.grid import grid_spec, plan_grid
    from bench.experiment.grid_exec import run_plan

    pair, runs = pair_copy(tmp_path), tmp_path / "runs"
    assert bm25_run(monkeypatch, capsys, pair, runs)[0] == 0
    spec = grid_spec({"pair_files": [pair], "systems": "bm25", "runs": runs, "no_report": True})
    plan = plan_grid(spec)
    assert [c.run for c in plan.cells] == [] and [c.run for c in plan.done] == ["bm25"]
    assert [c.run for c in plan_grid(spec, force=True).cells] == ["bm25"]

    qrels = pair.parent / "qrels.txt"
    qrels.write_text(qrels.read_text() + "q1 0 d3 1\n")
    caplog.set_level(logging.WARNING)
    plan = plan_grid(spec)
    assert [c.run for c in plan.cells] == ["bm25"] and plan.done == []
    assert identity_lines(caplog) == ["xx-en/bm25: the stored run was made with other inputs (the collection's files):"
                                      " running it again"]
    assert run_plan(plan).failed == [] and writes == ["bm25", "bm25"]
    assert identity_lines(caplog) == []  # the cell runs without asking again
    assert [c.run for c in plan_grid(spec).cells] == []
    code, _, _ = bm25_run(monkeypatch, capsys, pair, runs)  # and bench run reuses what the grid wrote
    assert code == 0 and writes == ["bm25", "bm25"]


def test_a_run_recorded_before_an_option_existed_keeps_its_identity(monkeypatch, capsys, caplog, bench_home, tmp_path,
                                                                   writes):
    """Session 17 added mt_size (default base) to the run options: every run recorded before it lacks the key, and
    was made as base makes it, so it is still reused; a recorded option off its default still tells runs apart."""
    from bench.systems.options import RunOptions

    pair, runs = pair_copy(tmp_path), tmp_path / "runs"
    every_option = RunOptions.as_dict

    def recorded_as(change):
        monkeypatch.setattr(RunOptions, "as_dict", lambda self: change(every_option(self)))
        assert bm25_run(monkeypatch, capsys, pair, runs, "--force")[0] == 0
        monkeypatch.setattr(RunOptions, "as_dict", every_option)
        return json.loads((runs / "xx-en" / "bm25" / "manifest.json").read_text())["identity"]["options"]

    options = recorded_as(lambda d: {k: v for k, v in d.items() if k != "mt_size"})  # bench before the option
    assert "mt_size" not in options and every_option(RunOptions())["mt_size"] == "base"
    caplog.set_level(logging.WARNING)
    assert bm25_run(monkeypatch, capsys, pair, runs)[0] == 0
    assert writes == ["bm25"]
    assert identity_lines(caplog) == ["xx-en/bm25: reusing the stored run (identical inputs); --force recomputes"]

    assert recorded_as(lambda d: {**d, "retired_option": 3})["retired_option"] == 3  # removed since, off a default
    caplog.clear()
    assert bm25_run(monkeypatch, capsys, pair, runs)[0] == 0
    assert writes == ["bm25", "bm25", "bm25"]
    assert identity_lines(caplog) == ["xx-en/bm25: the stored run was made with other inputs (the run options): "
                                      "running it again"]


def test_a_run_stored_before_identities_is_run_again(bench_home, tmp_path):
    import pandas as pd

    from bench.data.pair_ref import resolve_pair
    from bench.experiment.identity import run_identity, stored_verdict
    from bench.results.runs import write_run
    from bench.systems import get_system
    from bench.systems.options import RunOptions

    pair = resolve_pair(pair_copy(tmp_path))
    table = pd.DataFrame({"query_id": ["q1"], "measure": ["AP"], "value": [1.0]})
    write_run(tmp_path / "runs", "xx-en", "bm25", {"q1": {"d1": 1.0}}, table, {"pair": "xx-en", "system": "bm25"},
              10)
    identity = run_identity(pair, get_system("bm25"), RunOptions(), depth=1000, seed=0)
    verdict = stored_verdict(tmp_path / "runs", "xx-en", identity)
    assert verdict.stored is None and verdict.why == "the stored run predates run identities"
    assert stored_verdict(tmp_path / "elsewhere", "xx-en", identity).why is None  # nothing stored: nothing to say


def test_a_dry_run_names_the_runs_it_reuses_and_builds_nothing_for_them(monkeypatch, capsys, bench_home, tmp_path):
    pair, runs = pair_copy(tmp_path), tmp_path / "runs"
    assert bm25_run(monkeypatch, capsys, pair, runs)[0] == 0
    code, out, _ = run_main(monkeypatch, capsys, "run", "--pair-file", str(pair), "--systems", "bm25,oracle-bm25",
                            "--runs", str(runs), "--no-report", "--dry-run")
    assert code == 0
    assert out.splitlines()[2:5] == [
        "  reused, a stored run with identical inputs (--force recomputes): bm25",
        "  artifacts the runs need, each built once: 1, 0 of them trainings; 1 built already (under BENCH_HOME)",
        "    built  Lucene index of xx-en: no cost"]
    code, out, _ = bm25_run(monkeypatch, capsys, pair, runs, "--dry-run", "--force")
    assert code == 0 and "reused" not in out


# --- the estimate ----------------------------------------------------------------------------------------------


def _not_built() -> None:
    store.cached_build("test-artifact", {"never": "built"}, lambda tmp: None)


def _built() -> Path:
    return store.cached_build("test-artifact", {"built": "once"}, lambda tmp: None)


def tiny_needs():
    from bench.methods.distill.recipes import OPTICAL
    from bench.systems.needs import Need

    index = Need("lucene-index", ("xx",), "Lucene index of xx-en", _not_built)
    model = Need("model", ("m",), "model m", _built)
    config = replace(OPTICAL, steps=300, epochs=None)  # a budget in steps: no bitext to count
    student = Need("student", ("xx", "optical"), "optical student of xx-en", _not_built, ("ref", config, 0.0, 0),
                   (model.key,))
    queries = Need("query-encoding", ("xx", "q"), "foreign queries of xx-en by the student", _built, (),
                   (student.key,))
    return [index, model, student, queries]


def test_the_estimate_from_the_rates_measured_here(bench_home, tmp_path):
    from bench.data.pair_ref import resolve_pair
    from bench.experiment.estimate import estimate

    _built()
    rates.record("lucene-index", 1000, 10.0)  # 100 documents a second
    rates.record("student", 100, 200.0)
    rates.record("student", 50, 400.0)  # over both trainings: 150 steps in 600 s, 4 s a step
    assert rates.measured("student") == rates.Rate(150.0, 600.0)
    needs = tiny_needs()
    result = estimate(needs, dict.fromkeys((n.key for n in needs), resolve_pair(pair_copy(tmp_path))))
    assert [c.seconds for c in result.costs] == [4 / 100, 0.0, 300 * 4.0, 3 / 30]
    assert result.seconds == 4 / 100 + 300 * 4.0 + 3 / 30
    assert result.lines() == [
        "  artifacts the runs need, each built once: 4, 1 of them trainings; 1 built already (under BENCH_HOME)",
        "    build  Lucene index of xx-en: 4 documents at 100 documents a second (measured here), about 0 s",
        "    built  model m: no cost",
        "    train  optical student of xx-en: 300 steps at 4.0 s a step (measured here), about 20 min",
        # built, but from a student that is to be trained: built again (30 queries a second: the default)
        "    build  foreign queries of xx-en by the student: 3 queries at 30 queries a second (default rate, not "
        "measured here), about 0 s",
        "  estimated time to build and train: about 20 min (retrieval and scoring not included)"]


def test_a_long_build_says_how_long_at_the_rate_measured_here_and_nothing_without_one(bench_home):
    assert rates.expected("mt-model small", 2500) == ""
    rates.record("mt-model small", 100, 60.0)  # 0.6 s a step
    assert rates.expected("mt-model small", 2500) == f", about 25 min at the rate measured here ({rates.execution()})"
    assert rates.expected("mt-model", 2000) == ""  # the base size is measured apart


def test_the_estimate_without_rates_uses_the_defaults_and_says_so(bench_home, tmp_path):
    from bench.data.pair_ref import resolve_pair
    from bench.experiment.estimate import STAGES, estimate

    _built()
    (bench_home / rates.RATES_FILE).write_text("{not json")  # unreadable: no measurement
    needs = tiny_needs()
    result = estimate(needs, dict.fromkeys((n.key for n in needs), resolve_pair(pair_copy(tmp_path))))
    assert [c.measured for c in result.costs] == [False] * 4
    assert result.seconds == 4 / 1000 + 300 * 4.0 + 3 / 30 == (4 / STAGES["lucene-index"].default
                                                               + 300 / STAGES["student"].default + 3 / 30)
    assert result.lines()[1] == ("    build  Lucene index of xx-en: 4 documents at 1,000 documents a second (default "
                                 "rate, not measured here), about 0 s")
    assert result.lines()[3] == ("    train  optical student of xx-en: 300 steps at 4.0 s a step (default rate, not "
                                 "measured here), about 20 min")


def test_a_budget_in_epochs_is_estimated_in_the_steps_of_the_pairs_bitext(bench_home, tmp_path):
    from bench.data.pair_ref import resolve_pair
    from bench.experiment.estimate import Counts
    from bench.methods.distill.recipes import OPTICAL
    from bench.systems.needs import Need

    pair_file = pair_copy(tmp_path)
    (pair_file.parent / "bitext.tsv").write_text("".join(f"neno {i} la leo\tword {i} of today\n" for i in range(70)))
    student = Need("student", ("xx", "optical"), "optical student of xx-en", _not_built,
                   ("ref", replace(OPTICAL, epochs=1.5, steps=1000, batch_size=32), 0.0, 0))
    assert Counts(resolve_pair(pair_file)).items(student) == (None, "the bitext is not fetched yet")
    with open(pair_file, "a") as f:
        f.write("bitext: bitext.tsv\n")
    # 70 pairs: 3 batches of 32 an epoch, 1.5 epochs = 5 steps (rounded up); at most the config's steps
    assert Counts(resolve_pair(pair_file)).items(student) == (5, None)
    four_epochs = replace(OPTICAL, epochs=4, steps=7)
    capped = Need("student", ("xx", "capped"), "capped", _not_built, ("ref", four_epochs, 0.0, 0))
    assert Counts(resolve_pair(pair_file)).items(capped) == (7, None)


def test_rates_are_recorded_by_timed_builds_without_the_builds_nested_in_them(bench_home, monkeypatch):
    from types import SimpleNamespace

    clock = iter([0.0, 2.0, 9.0, 20.0, 100.0, 101.0, 200.0, 300.0])  # outer 0-20 with inner 2-9; 1 s; 100 s
    monkeypatch.setattr(rates, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    inner = rates.timed("mt-states", 40, lambda: "states")
    outer = rates.timed("mt-model", 12, lambda tmp: inner() + f" in {tmp}")
    assert outer("x") == "states in x"
    assert rates.measured("mt-states") == rates.Rate(40.0, 7.0) and rates.measured("mt-model") == rates.Rate(12.0, 13.0)
    rates.timed("lucene-index", 3, lambda: None)()  # 1 s: under MIN_SECONDS, its start-up would pass for its rate
    assert rates.measured("lucene-index") is None
    with pytest.raises(ValueError):
        rates.timed("model", 1, lambda: int("x"))()  # a build that fails records nothing
    data = json.loads((bench_home / rates.RATES_FILE).read_text())
    (settings,) = next(iter(data["hosts"].values())).values()
    assert data["version"] == rates.VERSION and sorted(settings) == ["mt-model", "mt-states"]


def test_a_rate_counts_only_for_the_execution_settings_it_was_measured_with(bench_home, monkeypatch):
    """A one-thread training (a queue's) never stands for a two-thread run; OpenVINO's encoding never for torch's."""
    monkeypatch.delenv("BENCH_DEVICE", raising=False)
    monkeypatch.delenv("BENCH_CPU_RUNTIME", raising=False)
    monkeypatch.setenv("BENCH_THREADS", "1")
    assert rates.execution() == "cpu, 1 thread, torch"
    rates.record("student", 100, 800.0)  # 8 s a step on one thread
    monkeypatch.setenv("BENCH_THREADS", "2")
    assert rates.execution() == "cpu, 2 threads, torch" and rates.measured("student") is None
    rates.record("student", 100, 500.0)
    rates.record("student", 50, 250.0)
    assert rates.measured("student") == rates.Rate(150.0, 750.0)  # 5 s a step: the one-thread 800 s not in it
    monkeypatch.setenv("BENCH_THREADS", "1")
    assert rates.measured("student") == rates.Rate(100.0, 800.0)
    monkeypatch.setattr(devices, "cpu_runtime", lambda device=None, quantize=None: "openvino")
    assert rates.execution() == "cpu, 1 thread, openvino" and rates.measured("student") is None
    monkeypatch.setenv("BENCH_DEVICE", "tpu")  # not a device a build could run on: nothing recorded, nothing read
    rates.record("student", 10, 100.0)
    assert rates.measured("student") is None
    hosts = json.loads((bench_home / rates.RATES_FILE).read_text())["hosts"]
    assert {k: v["student"]["seconds"] for k, v in next(iter(hosts.values())).items()} == {
        "cpu, 1 thread, torch": 800.0, "cpu, 2 threads, torch": 750.0}


def test_a_rates_file_of_the_first_version_is_no_measurement_and_is_replaced(bench_home):
    """Version 1 kept one total per host whatever the settings: those rates cannot say what they ran with."""
    path = bench_home / rates.RATES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"hosts": {rates._HOST: {"student": {"items": 10.0, "seconds": 40.0}}}}))
    assert rates.measured("student") is None
    rates.record("student", 20, 100.0)
    assert rates.measured("student") == rates.Rate(20.0, 100.0)
    data = json.loads(path.read_text())
    assert data["version"] == rates.VERSION and list(data["hosts"][rates._HOST]) == [rates.execution()]


def test_a_resumed_build_records_only_the_items_it_did(bench_home, monkeypatch):
    from types import SimpleNamespace

    clock = iter([0.0, 30.0])  # this process trained for 30 s
    monkeypatch.setattr(rates, "time", SimpleNamespace(monotonic=lambda: next(clock)))

    def resumed_training():
        rates.resumed_at(400)  # 400 of its 1,000 steps were done by a process that was stopped
        return "model"

    assert rates.timed("student", 1000, resumed_training)() == "model"
    assert rates.measured("student") == rates.Rate(600.0, 30.0)  # 20 steps a second, not 33
    rates.resumed_at(5)  # outside a timed build: nothing to correct, and nothing fails


def test_a_long_run_prints_its_plan_first(monkeypatch, capsys, bench_home, tmp_path):
    pair, runs = pair_copy(tmp_path), tmp_path / "runs"
    rates.record("lucene-index", 1, 100.0)  # 100 s a document: 4 documents, about 7 min
    code, out, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(pair), "--systems", "bm25", "--runs",
                              str(runs), "--no-report")
    assert code == 0 and (runs / "xx-en" / "bm25" / "run.trec").is_file()
    plan = [line for line in err.splitlines() if line.startswith(("plan:", "  "))]
    assert plan[3] == "    build  Lucene index of xx-en: 4 documents at 100.0 s a document (measured here), about 7 min"
    assert plan[4] == "  estimated time to build and train: about 7 min (retrieval and scoring not included)"
    assert "plan:" not in out
    # a short one does not (the index is built now), and -q never does
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(pair), "--systems", "bm25", "--runs",
                            str(runs), "--no-report", "--force")
    assert code == 0 and "plan:" not in err
    shutil.rmtree(bench_home / "indexes")
    code, _, err = run_main(monkeypatch, capsys, "-q", "run", "--pair-file", str(pair), "--systems", "bm25", "--runs",
                            str(runs), "--no-report", "--force")
    assert code == 0 and err == ""


def test_the_api_reuses_by_the_same_rule_and_force_runs_it_again(bench_home, tmp_path, writes):
    import bench
    from bench.errors import BenchError

    pair, runs = pair_copy(tmp_path), tmp_path / "runs"
    first = bench.run(pair, "bm25", runs=runs)
    second = bench.run(pair, "bm25", runs=runs)
    assert writes == ["bm25"]
    assert second.per_query.equals(first.per_query)  # the stored run, read back
    bench.run(pair, "bm25", runs=runs, force=True)
    assert writes == ["bm25", "bm25"]
    with pytest.raises(BenchError, match="force must be True or False, not 'yes'"):
        bench.run(pair, "bm25", runs=runs, force="yes")
    assert writes == ["bm25", "bm25"]


def test_the_small_mt_size_is_estimated_and_measured_apart_from_base(bench_home, tmp_path):
    """A step of `--mt-size small` costs under half of base's: its rate has a name, a default and measurements of its
    own, so neither size's estimate is made from the other's training."""
    from bench.data.pair_ref import resolve_pair
    from bench.experiment.estimate import estimate
    from bench.systems.options import RunOptions
    from bench.systems.stages import Nmt
    from bench.systems.stages.settings import Job

    pair_file = pair_copy(tmp_path)
    pair = resolve_pair(pair_file)

    def mt_line(size: str) -> tuple[str, str]:
        job = Job(pair, str(pair_file), RunOptions(mt_size=size), 0)
        (need,) = [n for n in Nmt().needs(job) if n.kind == "mt-model"]
        return need.rate_name, estimate([need], {need.key: pair}).costs[0].line()

    base = "2,000 steps at 1.8 s a step (default rate, not measured here), about 1 h 00 min"
    assert mt_line("base") == ("mt-model", f"    train  MT model of xx-en (seed 0): {base}")
    assert mt_line("small") == ("mt-model small", "    train  MT model of xx-en (seed 0): 2,500 steps at 0.8 s a step "
                                                  "(default rate, not measured here), about 33 min")
    rates.record("mt-model small", 100, 100.0)  # a second a step
    assert mt_line("small")[1].endswith("2,500 steps at 1.0 s a step (measured here), about 42 min")
    assert mt_line("base")[1].endswith(base)
