"""The `optical` and `sdistill` systems end to end on a tiny pair with bitext and a tiny random encoder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.data.collection.local import load_pair_file
from bench.errors import BenchError
from bench.experiment.runner import run_systems
from bench.infra import batching
from bench.systems import parse_systems
from test_dense import write_tiny_model

TINY = Path(__file__).parent / "data" / "tiny-pair"
BITEXT = [("mto nile unapita kaskazini", "the river nile flows north"), ("mto unapita", "the river flows"),
          ("nairobi mto kenya", "nairobi river of kenya"), ("kaskazini kenya", "north of kenya"),
          ("mto nile egypt", "the nile in egypt"), ("unapita kaskazini nairobi", "flows north of nairobi"),
          ("mto kenya unapita", "the kenya river flows"), ("nile kaskazini egypt", "nile north egypt")]


pytestmark = pytest.mark.usefixtures("one_thread")


def pair_folder(tmp_path: Path) -> Path:
    """A copy of the tiny pair with BITEXT as bitext.tsv."""
    folder = tmp_path / "pair"
    shutil.copytree(TINY, folder)
    (folder / "bitext.tsv").write_text("".join(f"{f}\t{e}\n" for f, e in BITEXT))
    return folder


def pair_with_bitext(tmp_path: Path, pair_file: str = "pair.yaml"):
    folder = pair_folder(tmp_path)
    with open(folder / pair_file, "a") as f:
        f.write("bitext: bitext.tsv\n")
    return load_pair_file(folder / pair_file)


def manifest(result) -> dict:
    return json.loads((result.path / "manifest.json").read_text())


def test_distilled_systems_train_once_share_checkpoints_and_rerun_identically(bench_home, tmp_path, monkeypatch):
    model = write_tiny_model(tmp_path / "tiny")
    pair = pair_with_bitext(tmp_path)
    systems = parse_systems("optical,optical-maxsim,sdistill,sdistill-maxsim,mdense")
    options = {"encoder": str(model), "distill_steps": 3}
    first = run_systems(pair, systems, tmp_path / "runs", options=options)
    again = run_systems(pair, systems, tmp_path / "runs-again", options=options)
    assert [r.means for r in first] == [r.means for r in again]  # the cached students, reused
    # seeded training: trained again from scratch in an empty BENCH_HOME, the students rank the same
    from bench.data.collection import forget_loaded

    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home-2"))
    forget_loaded()
    fresh = run_systems(pair, systems, tmp_path / "runs-fresh", options=options)
    assert len(list((tmp_path / "home-2" / "checkpoints").iterdir())) == 2
    assert [(r.path / "run.trec").read_bytes() for r in fresh] == [(r.path / "run.trec").read_bytes() for r in first]
    monkeypatch.setenv("BENCH_HOME", str(bench_home))
    forget_loaded()

    by_name = {r.system: manifest(r) for r in first}
    students = {name: m["artifacts"]["student"] for name, m in by_name.items() if "student" in m["artifacts"]}
    # one OT student shared by both scorings, one sentence-level student shared by both
    assert students["optical"]["checkpoint"] == students["optical-maxsim"]["checkpoint"]
    assert students["sdistill"]["checkpoint"] == students["sdistill-maxsim"]["checkpoint"]
    assert students["optical"]["checkpoint"] != students["sdistill"]["checkpoint"]
    assert len(list((bench_home / "checkpoints").iterdir())) == 2
    assert students["sdistill"]["config"]["w_ot"] == 0.0 and students["optical"]["config"]["steps"] == 3
    assert students["optical"]["training"]["steps"] == 3 and students["optical"]["training"]["pairs"] == len(BITEXT)
    assert students["optical"]["training"]["threads"] == batching.threads()  # on the CPU, another count: another model
    assert by_name["optical"]["artifacts"]["bitext"]["sources"] == {"bitext.tsv": len(BITEXT)}
    # the student encodes the foreign queries, the teacher (here the same tiny encoder) the documents
    models = by_name["optical"]["models"]
    assert models["query_encoder"]["spec"].startswith("optical:")
    assert models["doc_encoder"]["spec"] == str(model)
    assert models["query_encoder"]["fingerprint"] != by_name["mdense"]["models"]["query_encoder"]["fingerprint"]
    # a trained student ranks differently from the zero-shot encoder it started from
    runs = {r.system: (r.path / "run.trec").read_text() for r in first}
    assert runs["optical"] != runs["mdense"]


def test_student_encodes_the_foreign_documents_of_an_english_query_pair(bench_home, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    folder = pair_folder(tmp_path)
    (folder / "en-xx.yaml").write_text("name: en-xx\nqueries: queries.tsv\ndocs: docs.jsonl\nqrels: qrels.txt\n"
                                       "bitext: bitext.tsv\n")
    pair = load_pair_file(folder / "en-xx.yaml")
    assert (pair.query_lang, pair.doc_lang) == ("en", "xx")
    [result] = run_systems(pair, parse_systems("sdistill"), tmp_path / "runs",
                           options={"encoder": str(model), "distill_steps": 2})
    m = manifest(result)
    assert m["models"]["doc_encoder"]["spec"].startswith("sdistill:")
    assert m["models"]["query_encoder"]["spec"] == str(model)
    # trained on the passage side, as the documents are encoded
    assert m["artifacts"]["student"]["config"]["student_prefix"] == "passage: "


def test_a_pair_without_english_is_refused(bench_home, tmp_path):
    pair = pair_with_bitext(tmp_path, "pair-foreign-docs.yaml")
    with pytest.raises(BenchError, match="English on exactly one side"):
        run_systems(pair, parse_systems("optical"), tmp_path / "runs", options={"encoder": "unused"})
    assert not (tmp_path / "runs" / pair.name / "optical").exists()


def test_hybrid_reuses_the_component_runs_made_earlier_in_the_same_invocation(bench_home, tmp_path, monkeypatch):
    from bench.methods.retrieve import dense

    model = write_tiny_model(tmp_path / "tiny")
    pair = pair_with_bitext(tmp_path)
    options = {"encoder": str(model)}
    alone = run_systems(pair, parse_systems("mdense-hybrid"), tmp_path / "alone", options=options)[0]

    calls = []
    retrieve = dense.retrieve
    monkeypatch.setattr(dense, "retrieve", lambda *a, **k: calls.append(k["scoring"]) or retrieve(*a, **k))
    together = run_systems(pair, parse_systems("mdense-maxsim,bm25-psq,mdense-hybrid"), tmp_path / "together",
                           options=options)
    assert calls == ["maxsim"]  # the hybrid did not score MaxSim a second time
    assert (together[2].path / "run.trec").read_text() == (alone.path / "run.trec").read_text()
    artifacts = manifest(together[2])["artifacts"]
    assert artifacts["dense"]["system"] == "mdense-maxsim" and artifacts["lexical"]["system"] == "bm25-psq"
    assert manifest(together[2])["models"] == manifest(alone)["models"]
