"""bench grid: the plan (cells, needs, their order), sharded encodings, and the grid on a local Ray of 2 CPUs.

One local Ray serves the module (its workers find this module, so systems registered here run there).
The tiny pair (tests/data/tiny-pair, with translations, so oracle-bm25 runs) gets the bitext of
test_distilled_systems; the dense system runs a tiny random encoder.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.infra import store

from bench import systems
from bench.errors import BenchError
from bench.experiment.grid import grid_spec, load_grid_file, plan_grid
from bench.methods.retrieve.ranking import Run
from bench.systems import System
from cli_run import run_main
from test_dense import WORDS, TinyCollection, write_tiny_model
from test_distilled_systems import BITEXT

HERE = Path(__file__).resolve().parent
TINY = HERE / "data" / "tiny-pair"
RUN_FILES = ("run.trec", "perquery.csv")

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_pair(tmp_path: Path) -> Path:
    folder = tmp_path / "pair"
    shutil.copytree(TINY, folder)
    (folder / "bitext.tsv").write_text("".join(f"{f}\t{e}\n" for f, e in BITEXT))
    with open(folder / "pair.yaml", "a") as f:
        f.write("bitext: bitext.tsv\n")
    return folder / "pair.yaml"


def use_home(monkeypatch, home: Path) -> Path:
    from bench.data.collection import forget_loaded

    monkeypatch.setenv("BENCH_HOME", str(home))
    forget_loaded()
    return home


# --- systems of this test, registered in the driver; Ray's workers import them from this module ----------


def failing(ctx) -> Run:
    raise BenchError("deliberate failure", "a test's system")


def dies_once(ctx) -> Run:
    """Builds an artifact and, the first time, kills its own process half-way through."""
    marker = store.bench_home() / "die-once"

    def build(tmp: Path) -> None:
        (tmp / "half.txt").write_text("half")
        if marker.exists():
            marker.unlink()
            os._exit(1)
        (tmp / "whole.txt").write_text("whole")

    store.cached_build("grid-test", {"test": "dies once"}, build)
    return {q.query_id: {"d1": 1.0} for q in ctx.collection.queries}


@pytest.fixture
def test_systems():
    added = {"grid-fail": failing, "grid-die": dies_once}
    for name, fn in added.items():
        systems.SYSTEMS.register(name, System(name, "a test's system", fn, {"system": name}))
    yield
    for name in added:
        systems.SYSTEMS.remove(name)


@pytest.fixture(scope="module")
def local_ray():
    import ray

    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


# --- the plan ----------------------------------------------------------------------------------------------


def test_seeds_and_noise_multiply_only_the_systems_whose_runs_depend_on_them(bench_home, tmp_path):
    spec = grid_spec({"pair_files": [tiny_pair(tmp_path)],
                      "systems": "bm25,oracle-bm25,bm25-psq,optical,optical-maxsim",
                      "seeds": "0,1", "noise": [0, 0.2], "runs": tmp_path / "runs"})
    plan = plan_grid(spec)
    assert [c.run for c in plan.cells] == [
        "bm25", "oracle-bm25", "bm25-psq", "bm25-psq+noise0.2", "bm25-psq+noise0.2+seed1",
        "optical", "optical+seed1", "optical+noise0.2", "optical+noise0.2+seed1",
        "optical-maxsim", "optical-maxsim+seed1", "optical-maxsim+noise0.2", "optical-maxsim+noise0.2+seed1"]
    assert [(c.seed, c.noise, c.options.bitext_noise) for c in plan.cells[3:5]] == [(0, 0.2, 0.2), (1, 0.2, 0.2)]
    assert plan.notes[:3] == ["bm25: one run per pair (its run depends on no seed or noise rate)",
                              "oracle-bm25: one run per pair (its run depends on no seed or noise rate)",
                              "bm25-psq: noise 0: one run; noise 0.2: seeds 0,1"]
    kinds = [n.kind for n in plan.needs]
    # one index; a table per bitext (noise 0 is one bitext whatever the seed); a student per (seed, noise),
    # shared by both scorings; the teacher's document encoding once for both scorings; the queries per student
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "lucene-index": 1, "ibm1-table": 3, "model": 1, "student": 4, "doc-encoding": 1, "query-encoding": 4}
    [doc] = [n for n in plan.needs if n.kind == "doc-encoding"]
    assert doc.args[0].modes == {"mean", "maxsim"} and doc.after == (("model", ("multilingual-e5-small",)),)
    # students of one (seed, noise) would fill one teacher cache: none here share one, so none wait for another
    assert all(len(n.after) == 1 for n in plan.needs if n.kind == "student")
    order = {id(t): i for i, t in enumerate(plan.tasks())}
    by_key = {n.key: n for n in plan.needs}
    for task in plan.tasks():
        for key in getattr(task, "after", ()) or getattr(task, "needs", ()):
            assert order[id(by_key[key])] < order[id(task)]


def test_shards_split_an_encoding_and_the_recipes_of_one_student_budget_wait_for_each_other(bench_home, tmp_path):
    spec = grid_spec({"pair_files": [tiny_pair(tmp_path)], "systems": "optical,sdistill-maxsim", "shards": 3,
                      "runs": tmp_path / "runs"})
    needs = {n.key: n for n in plan_grid(spec).needs}
    students = [n for n in needs.values() if n.kind == "student"]
    assert [len(s.after) for s in students] == [1, 2] and students[0].key in students[1].after  # one teacher cache
    [assembled] = [n for n in needs.values() if n.kind == "doc-encoding"]
    assert [needs[k].label for k in assembled.after] == [
        f"shard {i}/3 of the documents of xx-en by multilingual-e5-small" for i in (1, 2, 3)]
    assert assembled.args[1] == 3 and all(needs[k].after[0][0] == "doc-plan" for k in assembled.after)


@pytest.mark.parametrize("text,error", [
    ("pairs: [sw-en]\nsytems: bm25\n", "unknown grid key 'sytems' (did you mean systems?)"),
    ("pairs: [sw-en]\nseeds: [0, x]\n", "--seeds must be distinct non-negative integers, got [0, 'x']"),
    ("pairs: [sw-en]\nnoise: 0.2,1\n", "--noise must be distinct fractions in [0, 1), got '0.2,1'"),
    ("pairs: [sw-en]\nshards: 0\n", "--shards must be an integer of at least 1, got 0"),
    ("pairs: [sw-en]\noptions: {encodr: x}\n", "unknown run option 'encodr' (did you mean encoder?)"),
    ("pairs: [sw-en]\noptions: {bitext_noise: 0.2}\n", "the grid's noise rates are its `noise` key"),
    ("- sw-en\n", "expected a mapping of grid keys to values"),
])
def test_a_bad_grid_file_is_one_line(tmp_path, monkeypatch, capsys, text, error):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(BenchError) as caught:
        load_grid_file(path)
    assert str(caught.value).startswith(f"{path}: {error}")
    code, out, err = run_main(monkeypatch, capsys, "grid", "--file", str(path))
    assert code == 2 and out == "" and err.startswith(f"error: {path}: {error}") and err.count("\n") == 1


# --- sharded encodings ---------------------------------------------------------------------------------------


def test_an_encoding_assembled_from_shards_is_byte_identical_to_one_pass(bench_home, tmp_path, monkeypatch):
    from bench.data import models
    from bench.data.collection import Doc
    from bench.methods.retrieve import encodings
    from bench.methods.retrieve.encoder import Encoder

    ref = models.resolve(str(write_tiny_model(tmp_path / "tiny")))
    rng = random.Random(0)  # lengths 0..40 words: five batches of 64, empty documents too
    docs = [Doc(f"d{i}", "", " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40)))) for i in range(300)]
    collection = TinyCollection(docs, [])  # its docs_fingerprint: of the documents
    one = Encoder(ref).encode([d.default_text() for d in docs], "doc", token_states=True)  # today's single pass
    reference = tmp_path / "reference"
    reference.mkdir()
    np.save(reference / "vectors.npy", one.vectors)
    np.save(reference / "states.npy", one.states)
    np.save(reference / "offsets.npy", one.offsets)
    (reference / "doc_ids.json").write_text(json.dumps([d.doc_id for d in docs]))

    def digests(path: Path, names) -> dict:
        return {n: hashlib.sha256((path / n).read_bytes()).hexdigest() for n in names}

    want_states = digests(reference, ["states.npy", "offsets.npy", "doc_ids.json"])
    want_vectors = digests(reference, ["vectors.npy", "doc_ids.json"])
    names = set()
    for shards, chunk in [(1, 1 << 18), (1, 300), (3, 500), (7, 1 << 18)]:  # 7 shards of 5 batches: two empty
        use_home(monkeypatch, tmp_path / f"home-{shards}-{chunk}")
        monkeypatch.setattr(encodings, "CHUNK_TOKENS", chunk)  # 300: a chunk per batch, streamed to disk
        states = encodings.doc_states(Encoder(ref), collection, shards)
        vectors = encodings.doc_vectors(Encoder(ref), collection, shards)
        assert digests(states.path, want_states) == want_states
        assert digests(vectors.path, want_vectors) == want_vectors
        assert not (states.path / ".parts").exists()
        names.add((states.path.name, vectors.path.name))
        shard_dirs = [p for p in states.path.parent.iterdir() if '"shard"' in (p / "key.json").read_text()]
        assert len(shard_dirs) == (0 if shards == 1 else shards)
    assert len(names) == 1  # assembled from shards, the artifact is the one-pass artifact, under its key


# --- the grid --------------------------------------------------------------------------------------------------


def count_builds(monkeypatch) -> list[tuple[str, str, bool]]:
    """Every cached build in this process: (kind, fingerprint, inside a cell?)."""
    import bench.methods.distill.recipes  # noqa: F401  (every module that builds, imported before patching)
    import bench.experiment.grid_exec as grid_exec
    import bench.methods.retrieve.bm25  # noqa: F401
    import bench.methods.retrieve.dense  # noqa: F401
    import bench.methods.translate.ibm1  # noqa: F401

    builds, inside = [], [False]
    original = store.cached_build

    def counting(kind, key, build):
        if not store.is_complete(store.artifact_dir(kind, key)):
            builds.append((kind, store.fingerprint(key), inside[0]))
        return original(kind, key, build)

    for name, module in list(sys.modules.items()):
        if name.startswith("bench") and getattr(module, "cached_build", None) is original:
            monkeypatch.setattr(module, "cached_build", counting)
    cell_task = grid_exec.cell_task

    def in_cell(*args):
        inside[0] = True
        try:
            return cell_task(*args)
        finally:
            inside[0] = False

    monkeypatch.setattr(grid_exec, "cell_task", in_cell)
    return builds


def run_files(runs: Path) -> dict[str, bytes]:
    return {f"{d.name}/{f}": (d / f).read_bytes() for d in sorted((runs / "xx-en").iterdir()) for f in RUN_FILES}


GRID_SYSTEMS = "bm25,oracle-bm25,bm25-psq,mdense,mdense-maxsim"


def test_the_grid_on_ray_writes_what_the_plan_in_process_and_bench_run_write(local_ray, test_systems, tmp_path,
                                                                              monkeypatch, capsys):
    from bench.experiment.grid_exec import run_plan

    pair = tiny_pair(tmp_path)
    model = str(write_tiny_model(tmp_path / "tiny"))
    flags = ["--pair-file", str(pair), "--seeds", "0,1", "--noise", "0,0.2", "--encoder", model, "--no-report"]

    # in-process: every artifact built once, by the needs, none by a cell
    use_home(monkeypatch, tmp_path / "home-here")
    builds = count_builds(monkeypatch)
    spec = grid_spec({"pair_files": [pair], "systems": GRID_SYSTEMS, "seeds": [0, 1], "noise": [0, 0.2],
                      "options": {"encoder": model}, "runs": tmp_path / "here"})
    plan = plan_grid(spec)
    result = run_plan(plan)
    assert result.failed == [] and len(result.cells) == 7
    assert len(builds) == len(set(builds)) and not any(in_cell for _, _, in_cell in builds)
    built_kinds = sorted(kind for kind, _, _ in builds)
    # the index, 3 tables, the document lengths, states and vectors, the queries pooled and by token: what a
    # bench run builds (the mean pass keeps a small corpus's states, so MaxSim's token count is never needed;
    # before issue 24 the grid also built that count, which no run did)
    assert built_kinds == ["dense-docs"] * 3 + ["dense-queries"] * 2 + ["indexes"] + ["translation-tables"] * 3
    monkeypatch.undo()
    capsys.readouterr()

    # on Ray, with the documents encoded as 2 shards, and a system that fails
    use_home(monkeypatch, tmp_path / "home-ray")
    code, out, err = run_main(monkeypatch, capsys, "grid", "--systems", GRID_SYSTEMS + ",grid-fail", *flags,
                              "--shards", "2", "--ray", "local", "--runs", str(tmp_path / "ray"))
    assert code == 2
    assert err.strip().splitlines()[-1] == ("error: 1 of 8 cells failed (first: xx-en grid-fail: deliberate failure "
                                            "(a test's system)) (fix them and run bench grid again: it runs only the "
                                            "cells without a stored run of identical inputs)")
    # the index, 3 tables; the documents: their plan, 2 shards, the assembly; the queries
    assert out.splitlines()[0] == "grid: 8 cell(s) to run on 1 pair(s), 9 artifact(s) to build, on Ray (local)"
    assert re.search(r"\] FAILED xx-en grid-fail: deliberate failure \(a test's system\)\n", out)
    built = re.findall(r"\] built (.+) \([0-9.]+ s\)\n", out)
    assert len(built) == 9 == len(set(built)) and " reused " not in out  # each need once, all built
    done = re.findall(r"\] done (xx-en \S+) \(", out)
    assert sorted(done) == sorted(f"xx-en {c.run}" for c in plan.cells)
    assert run_files(tmp_path / "ray") == run_files(tmp_path / "here")

    # bench run writes the same files for the same cells
    use_home(monkeypatch, tmp_path / "home-run")
    for args in (["--systems", GRID_SYSTEMS, "--encoder", model],
                 ["--systems", "bm25-psq", "--bitext-noise", "0.2", "--seed", "1"]):
        code, _, err = run_main(monkeypatch, capsys, "-q", "run", "--pair-file", str(pair), *args,
                                "--runs", str(tmp_path / "run"), "--no-report")
        assert code == 0, err
    ray_files = run_files(tmp_path / "ray")
    assert run_files(tmp_path / "run") == {k: ray_files[k] for k in run_files(tmp_path / "run")}

    # a rerun runs only the cell that has no complete run, and builds nothing
    use_home(monkeypatch, tmp_path / "home-ray")
    reports = tmp_path / "reports"
    code, out, _ = run_main(monkeypatch, capsys, "grid", "--systems", GRID_SYSTEMS + ",grid-fail", *flags[:-1],
                            "--ray", "local", "--runs", str(tmp_path / "ray"), "--reports", str(reports))
    assert code == 2
    assert out.splitlines()[0] == "grid: 1 cell(s) to run on 1 pair(s), 0 artifact(s) to build, on Ray (local)"
    assert "  7 cell(s) have a stored run with identical inputs: reused (--force runs them again)" in out.splitlines()
    # the pair's report (a Ray task, after the pair's cells) and the leaderboard, of every stored run
    wrote = re.findall(r"^wrote (.+)$", out, re.M)
    assert sorted(Path(w).name for w in wrote) == sorted(
        ["xx-en.perquery.csv", "xx-en.md", "xx-en.html", "leaderboard.json", "leaderboard.md", "leaderboard.html"])
    table = (reports / "xx-en.perquery.csv").read_text()
    assert all(f",{c.system.name}" in table for c in plan.cells) and "grid-fail" not in table


def test_a_killed_worker_leaves_nothing_half_built_and_the_rerun_completes(local_ray, test_systems, tmp_path,
                                                                          monkeypatch, capsys):
    home = use_home(monkeypatch, tmp_path / "home")
    home.mkdir()
    (home / "die-once").write_text("")
    args = ["grid", "--pair-file", str(tiny_pair(tmp_path)), "--systems", "grid-die", "--ray", "local",
            "--retries", "0", "--runs", str(tmp_path / "runs"), "--no-report"]
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and "grid-die: its worker died (killed, or out of memory) and was not retried" in err
    artifact = store.artifact_dir("grid-test", {"test": "dies once"})
    assert not (home / "die-once").exists()  # it did die
    assert not store.is_complete(artifact) and not artifact.exists()
    assert not (tmp_path / "runs" / "xx-en" / "grid-die").exists()

    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 0, err
    assert store.is_complete(artifact) and (artifact / "whole.txt").read_text() == "whole"
    assert [p.name for p in artifact.parent.iterdir()] == [artifact.name]  # the dead build's leftovers are gone
    assert (tmp_path / "runs" / "xx-en" / "grid-die" / "run.trec").read_text().startswith("q1 Q0 d1 1 ")


# --- every system: the needs the grid plans are what its run builds ------------------------------------------


@pytest.mark.parametrize("profile", ["full", "ci"])
def test_every_system_plans_exactly_the_artifacts_its_run_builds(tmp_path, monkeypatch, profile):
    """For every built-in system and both profiles, on the tiny pair with a tiny encoder and a tiny MT model:
    the grid builds every artifact as a need (none inside a cell), and a plain run of the same systems in an
    empty BENCH_HOME builds exactly the same artifacts, under the same keys (counted through the store).
    Not covered here: the MT model bench trains itself (`--mt-model` is given; the trained model's needs are
    the same stage's, compared on sw-en by benchmarks/artifact_keys.py)."""
    from test_nmt import write_tiny_marian

    from bench.experiment.grid_exec import run_plan
    from bench.experiment.plan import plan_run
    from bench.systems import all_systems

    pair = tiny_pair(tmp_path)
    marian = write_tiny_marian(tmp_path / "tiny-marian")
    options = {"encoder": str(write_tiny_model(tmp_path / "tiny")), "mt_model": str(marian), "profile": profile}
    names = [s.name for s in all_systems() if s.stages is not None]
    assert len(names) == 14

    use_home(monkeypatch, tmp_path / "grid-home")
    builds = count_builds(monkeypatch)
    plan = plan_grid(grid_spec({"pair_files": [pair], "systems": names, "options": options,
                                "runs": tmp_path / "grid-runs", "no_report": True}))
    result = run_plan(plan)
    assert result.failed == [] and len(result.cells) == len(names)
    assert builds and not any(in_cell for _, _, in_cell in builds)  # the needs built everything
    planned = sorted((kind, key) for kind, key, _ in builds)
    assert len(planned) == len(set(planned))  # and each once

    use_home(monkeypatch, tmp_path / "run-home")
    builds.clear()
    plan_run(pair, names, options=options, runs=tmp_path / "runs").execute()
    built = sorted((kind, key) for kind, key, _ in builds)
    assert built == planned


def test_a_changed_depth_measure_set_or_option_reruns_the_affected_cells(bench_home, tmp_path):
    """Issue 25: the grid's rerun rule on its negative path: a cell whose stored run was made with another
    depth, other measures or another option it reads is run again; the others stay done."""
    from bench.experiment.grid_exec import run_plan

    pair = tiny_pair(tmp_path)
    base = {"pair_files": [pair], "systems": "bm25,bm25-psq", "runs": tmp_path / "runs", "no_report": True}
    first = plan_grid(grid_spec(base))
    assert [c.run for c in first.cells] == ["bm25", "bm25-psq"] and run_plan(first).failed == []
    assert [c.run for c in plan_grid(grid_spec(base)).cells] == []  # everything done
    assert [c.run for c in plan_grid(grid_spec({**base, "depth": 5})).cells] == ["bm25", "bm25-psq"]
    assert [c.run for c in plan_grid(grid_spec({**base, "measures": "AP,P@1"})).cells] == ["bm25", "bm25-psq"]
    # an option only bm25-psq reads (the bitext noise, as the grid's noise rate): only its cells run
    noisy = plan_grid(grid_spec({**base, "noise": [0, 0.2]}))
    assert [c.run for c in noisy.cells] == ["bm25-psq+noise0.2"] and len(noisy.done) == 2


# --- pairs over one corpus: one index; the plan's estimate -------------------------------------------------------


def pairs_over_one_corpus(tmp_path: Path, bitext: str = "") -> tuple[Path, Path]:
    """The tiny pair (xx-en) and a copy of it (yy-en) with the same docs.jsonl and other queries (q1 and q3)."""
    pairs = []
    for name, keep in (("xx-en", ("q1", "q2", "q3")), ("yy-en", ("q1", "q3"))):
        folder = tmp_path / name
        shutil.copytree(TINY, folder)
        for file in ("queries.tsv", "qrels.txt"):
            lines = (folder / file).read_text().splitlines(keepends=True)
            (folder / file).write_text("".join(line for line in lines if line.split()[0] in keep))
        text = (folder / "pair.yaml").read_text().replace("name: xx-en", f"name: {name}")
        if bitext:
            (folder / "bitext.tsv").write_text(bitext)
            text += "bitext: bitext.tsv\n"
        (folder / "pair.yaml").write_text(text)
        pairs.append(folder / "pair.yaml")
    assert (pairs[0].parent / "docs.jsonl").read_bytes() == (pairs[1].parent / "docs.jsonl").read_bytes()
    return pairs[0], pairs[1]


def test_two_pairs_over_one_corpus_plan_and_build_one_index(bench_home, tmp_path, monkeypatch):
    """The index is keyed by the documents (bm25.index_key): the grid plans it once for both pairs, under that
    key, builds it once, and a second plan reads no document for it (the fingerprint is remembered)."""
    from bench.data.collection import Collection
    from bench.data.pair_ref import resolve_pair
    from bench.experiment.grid_exec import run_plan
    from bench.methods.retrieve import bm25

    xx, yy = pairs_over_one_corpus(tmp_path)
    spec = grid_spec({"pair_files": [xx, yy], "systems": "bm25,oracle-bm25", "runs": tmp_path / "runs",
                      "no_report": True})
    plan = plan_grid(spec)
    [index] = plan.needs
    key = bm25.index_key(resolve_pair(xx).collection(), "en")
    assert key == bm25.index_key(resolve_pair(yy).collection(), "en")  # the same documents, other queries
    assert index.key == ("lucene-index", tuple(sorted(key.items()))) and index.label == "Lucene index of xx-en"
    assert [(c.label, c.needs) for c in plan.cells] == [(f"{p} {s}", (index.key,)) for p in ("xx-en", "yy-en")
                                                        for s in ("bm25", "oracle-bm25")]
    assert [t.label for t in plan.tasks()] == ["Lucene index of xx-en", "xx-en bm25", "xx-en oracle-bm25",
                                               "yy-en bm25", "yy-en oracle-bm25"]

    read = []
    real = Collection.iter_docs
    monkeypatch.setattr(Collection, "iter_docs", lambda self: read.append(self.dataset_id) or real(self))
    assert plan_grid(spec).needs[0].key == index.key and read == []  # the fingerprint, remembered: nothing read

    builds = count_builds(monkeypatch)
    assert run_plan(plan).failed == []
    assert [(kind, fp, in_cell) for kind, fp, in_cell in builds] == [("indexes", store.fingerprint(key), False)]
    runs = {p: (tmp_path / "runs" / p / "bm25" / "run.trec").read_text().splitlines() for p in ("xx-en", "yy-en")}
    assert [line.split()[:3] for line in runs["yy-en"]] == [["q1", "Q0", "d1"], ["q3", "Q0", "d4"]]  # its queries
    assert runs["yy-en"] == [line for line in runs["xx-en"] if not line.startswith("q2 ")]


def test_a_grid_dry_run_estimates_each_artifact_once_from_the_rates_measured_here(bench_home, tmp_path, monkeypatch,
                                                                                   capsys):
    """`bench grid --dry-run` says what `bench run --dry-run` says (bench.experiment.estimate): each artifact once
    however many cells and pairs need it, its items (of its own pair) at the rate recorded in BENCH_HOME/rates.json
    or the stated default; a built one costs nothing."""
    from bench.infra import rates

    # the leakage guard drops a bitext pair that is a query: xx-en keeps 2 of these, yy-en (no query "mbwa") all 3
    xx, yy = pairs_over_one_corpus(tmp_path, "paka\tcat\nmbwa\tdog\nnyumba\thouse\n")
    rates.record("lucene-index", 8, 200.0)  # 25 s a document
    rates.record("ibm1-table", 1, 30.0)  # 30 s a bitext pair
    args = ["grid", "--pair-file", str(xx), "--pair-file", str(yy), "--systems", "bm25,bm25-psq,oracle-bm25",
            "--runs", str(tmp_path / "runs"), "--no-report"]
    code, out, err = run_main(monkeypatch, capsys, *args, "--dry-run")
    assert code == 0, err
    assert out.splitlines() == [
        "grid: 6 cell(s) to run on 2 pair(s), 3 artifact(s) to build, in this process",
        "  need  Lucene index of xx-en",
        "  cell  xx-en bm25",
        "  need  IBM1 table of xx-en",
        "  cell  xx-en bm25-psq",
        "  cell  xx-en oracle-bm25",
        "  cell  yy-en bm25",
        "  need  IBM1 table of yy-en",
        "  cell  yy-en bm25-psq",
        "  cell  yy-en oracle-bm25",
        "  artifacts the runs need, each built once: 3, 0 of them trainings",
        "    build  Lucene index of xx-en: 4 documents at 25.0 s a document (measured here), about 2 min",
        "    build  IBM1 table of xx-en: 2 bitext pairs at 30.0 s a bitext pair (measured here), about 1 min",
        "    build  IBM1 table of yy-en: 3 bitext pairs at 30.0 s a bitext pair (measured here), about 2 min",
        # 100 s + 60 s + 90 s
        "  estimated time to build and train: about 4 min (retrieval and scoring not included)",
        "nothing was run (--dry-run)"]
    assert not (tmp_path / "runs").exists() and not (bench_home / "indexes").exists()
    assert not (bench_home / "translation-tables").exists()

    code, _, err = run_main(monkeypatch, capsys, *args[:-1], "--systems", "bm25", "--no-report")  # the index only
    assert code == 0, err
    code, out, err = run_main(monkeypatch, capsys, *args, "--dry-run", "--force")
    assert code == 0, err
    assert out.splitlines()[-6:] == [
        "  artifacts the runs need, each built once: 3, 0 of them trainings; 1 built already (under BENCH_HOME)",
        "    built  Lucene index of xx-en: no cost",
        "    build  IBM1 table of xx-en: 2 bitext pairs at 30.0 s a bitext pair (measured here), about 1 min",
        "    build  IBM1 table of yy-en: 3 bitext pairs at 30.0 s a bitext pair (measured here), about 2 min",
        "  estimated time to build and train: about 2 min (retrieval and scoring not included)",
        "nothing was run (--dry-run)"]


def test_a_long_grid_says_its_plan_on_stderr_before_it_starts(bench_home, tmp_path, monkeypatch, capsys):
    from bench.infra import rates

    xx, yy = pairs_over_one_corpus(tmp_path, "paka\tcat\nmbwa\tdog\nnyumba\thouse\n")
    rates.record("lucene-index", 2, 120.0)  # 60 s a document: the index of 4 documents, about 4 min
    args = ["grid", "--pair-file", str(xx), "--pair-file", str(yy), "--systems", "bm25", "--no-report"]
    code, _, err = run_main(monkeypatch, capsys, *args, "--runs", str(tmp_path / "quiet"), "-q")
    assert code == 0 and err == ""  # -q: errors only
    shutil.rmtree(bench_home / "indexes")
    code, _, err = run_main(monkeypatch, capsys, *args, "--runs", str(tmp_path / "runs"))
    assert code == 0
    assert err.splitlines()[-3:] == [
        "  artifacts the runs need, each built once: 1, 0 of them trainings",
        "    build  Lucene index of xx-en: 4 documents at 60.0 s a document (measured here), about 4 min",
        "  estimated time to build and train: about 4 min (retrieval and scoring not included)"]
