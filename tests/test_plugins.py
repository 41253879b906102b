"""Plugins: a package adds a system through the `bench.systems` entry point group.

The working package is really built and installed by pip (`pip install --target DIR`, a directory put
on sys.path for the test), not into the shared environment: other test runs on this machine never see
a half-installed plugin, and a killed test leaves nothing to uninstall. The broken and duplicate
plugins are `.dist-info` directories written by hand, which importlib.metadata reads the same way.

A test sees the plugins of its own directory only: bench's lookup of the entry points is pointed at it, so
another bench plugin installed in the environment changes nothing (each test runs beside one: a package
on sys.path whose plugins take the test plugin's name and fail to load).
"""

import importlib
import json
from importlib import metadata
from types import SimpleNamespace
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import cli, systems
from bench.systems import plugins
from bench.data.collection.local import load_pair_file
from bench.errors import BenchError
from bench.systems.options import RunOptions
from bench.experiment.plan import check_options
from bench.experiment.runner import run_systems
from bench.results.runs import read_trec
from cli_run import run_main

TINY = Path(__file__).parent / "data" / "tiny-pair"

PLUGIN = '''
"""A tiny plugin system: word overlap between query and document."""
from bench.systems.plugins import system
from bench.infra.text import tokenize


@system("word overlap of query and document, ties by document order", reads=("max_length",),
        spec={"scoring": "overlap"})
def overlap(ctx):
    """Scores: shared words (of the first max_length words of the document) minus 0.01 per place in the corpus."""
    n = ctx.options.max_length
    docs = [(d.doc_id, set(tokenize(d.default_text())[:n])) for d in ctx.collection.iter_docs()]
    run = {}
    for qid, text in ctx.foreign_queries():
        words = set(tokenize(text))
        run[qid] = {doc_id: len(words & seen) - 0.01 * i for i, (doc_id, seen) in enumerate(docs)}
    ctx.artifacts["plugin_note"] = "overlap"
    return run
'''


def _forget_plugins():
    systems.load_plugins(reload=True)  # unregister what was loaded, look again (on the restored sys.path)


def _entry_points_in(directory: Path) -> SimpleNamespace:
    """importlib.metadata as bench's plugin lookup uses it, seeing the distributions in ``directory`` only."""
    def entry_points(group: str) -> list[metadata.EntryPoint]:
        return [ep for dist in metadata.distributions(path=[str(directory)]) for ep in dist.entry_points
                if ep.group == group]

    return SimpleNamespace(entry_points=entry_points)


@pytest.fixture(autouse=True)
def another_plugin_installed(tmp_path):
    """Another bench plugin installed in the environment (on sys.path, as pip installs one), whose systems take
    the name of this module's plugin and cannot be loaded: the tests pass beside it."""
    elsewhere = tmp_path / "environment"
    elsewhere.mkdir()
    _fake_dist(elsewhere, "bench-other-plugin", "overlap = bench_other_plugin_gone:run\n"
               "fine = bench_other_plugin_gone:fine\n")
    sys.path.append(str(elsewhere))
    importlib.invalidate_caches()
    yield
    sys.path.remove(str(elsewhere))
    importlib.invalidate_caches()
    _forget_plugins()


@pytest.fixture
def site(tmp_path):
    """A directory on sys.path for installed plugin packages, the only one bench's plugin lookup sees; plugins
    forgotten after the test."""
    target = tmp_path / "site"
    target.mkdir()
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plugins, "metadata", _entry_points_in(target))
        yield target
    sys.path.remove(str(target))  # before the plugins are looked up again
    importlib.invalidate_caches()
    for name in [m for m in sys.modules if m.startswith("bench_tiny_plugin")]:
        del sys.modules[name]
    _forget_plugins()


@pytest.fixture
def installed(site, tmp_path):
    package = tmp_path / "bench-tiny-plugin"
    package.mkdir()
    (package / "bench_tiny_plugin.py").write_text(PLUGIN)
    (package / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "bench-tiny-plugin"
        version = "0.1.0"

        [project.entry-points."bench.systems"]
        overlap = "bench_tiny_plugin:overlap"

        [tool.setuptools]
        py-modules = ["bench_tiny_plugin"]
    '''))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(package)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (site / "bench_tiny_plugin-0.1.0.dist-info" / "entry_points.txt").is_file()
    _forget_plugins()
    return site


def _fake_dist(site: Path, name: str, entry_points: str, module: str | None = None, code: str = "") -> None:
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bench.systems]\n" + entry_points)
    if module:
        (site / f"{module}.py").write_text(code)


def test_an_installed_plugin_runs_like_a_built_in_system(installed, bench_home, tmp_path):
    overlap = systems.get_system("overlap")
    assert (overlap.plugin, overlap.reads) == ("bench-tiny-plugin", ("max_length",))
    assert overlap.description == "word overlap of query and document, ties by document order"
    assert overlap.spec_for(RunOptions()) == {"system": "overlap", "scoring": "overlap",
                                               "plugin": "bench-tiny-plugin==0.1.0"}
    assert "overlap" in [s.name for s in systems.default_systems(has_translations=True)]  # next to the built-in ones
    pair = load_pair_file(TINY / "pair.yaml")
    [result] = run_systems(pair, systems.parse_systems("overlap"), tmp_path / "runs")
    # q1 "paka mkeka": d1 2.00 (both words), d2 -0.01, d3 -0.02, d4 -0.03 -> d1 first, AP 1
    # q2 "mbwa": d3 0.98, d1 0, d2 -0.01, d4 -0.03 -> relevant d3 at 1, d2 at 3: AP (1 + 2/3) / 2 = 5/6
    # q3 "nyumba kubwa": d4 1.97 first -> AP 1.   MAP (1 + 5/6 + 1) / 3 = 17/18
    assert result.means["AP"] == pytest.approx(17 / 18)
    assert result.means["RR@10"] == pytest.approx(1.0)
    run = read_trec(result.path / "run.trec")
    assert run["q2"] == pytest.approx({"d1": 0.0, "d2": -0.01, "d3": 0.98, "d4": -0.03})
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["spec"]["plugin"] == "bench-tiny-plugin==0.1.0"
    assert manifest["artifacts"] == {"plugin_note": "overlap"}


def test_the_option_a_plugin_reads_reaches_it_and_others_are_refused(installed, bench_home, tmp_path):
    pair = load_pair_file(TINY / "pair.yaml")
    chosen = systems.parse_systems(["overlap"])
    check_options(RunOptions(max_length=1), chosen)
    with pytest.raises(BenchError, match="no chosen system reads the option encoder"):
        check_options(RunOptions(encoder="multilingual-e5-small"), chosen)
    [result] = run_systems(pair, chosen, tmp_path / "runs", options={"max_length": 1})
    # the first word only (cats, dogs, a, nyumba): q1 all 0 -> d1 first (AP 1); q2 all 0 -> d1, d2, d3, d4:
    # AP (1/2 + 2/3) / 2 = 7/12, RR 1/2; q3: d4 0.97 first (AP 1). MAP 31/36, MRR 5/6
    assert result.means["AP"] == pytest.approx(31 / 36)
    assert result.means["RR@10"] == pytest.approx(5 / 6)


def test_bench_systems_lists_the_plugin_with_its_package(installed, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["bench", "systems"])
    cli.main()
    lines = capsys.readouterr().out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("overlap "))
    assert lines[i].split(None, 1)[1] == ("word overlap of query and document, ties by document order  "
                                          "[plugin: bench-tiny-plugin]")
    assert lines[i + 1].split() == ["options:", "--max-length"]
    assert lines[0].split()[0] == "bm25"  # built-in systems first


def test_a_broken_plugin_is_one_warning_and_left_out(site, caplog):
    _fake_dist(site, "bench-broken", "gone = bench_tiny_plugin_missing:run\n"
               "odd = bench_tiny_plugin_odd:run\nfine = bench_tiny_plugin_fine:run\n")
    (site / "bench_tiny_plugin_odd.py").write_text("run = 42\n")
    (site / "bench_tiny_plugin_fine.py").write_text(
        'def run(ctx):\n    """Every query, the first document."""\n'
        '    return {q: {"d1": 1.0} for q, _ in ctx.foreign_queries()}\n')
    with caplog.at_level(logging.WARNING, logger="bench.systems.plugins"):
        _forget_plugins()
    warnings = [r.getMessage() for r in caplog.records if r.name == "bench.systems.plugins"]
    assert len(warnings) == 2 and all("\n" not in w for w in warnings)
    assert warnings[0].startswith("plugin system 'gone' (the plugin bench_tiny_plugin_missing:run of the package "
                                  "bench-broken) is left out: ModuleNotFoundError")
    assert "'odd'" in warnings[1] and "is not callable (type int)" in warnings[1]
    names = [s.name for s in systems.all_systems()]
    assert "gone" not in names and "odd" not in names
    fine = systems.get_system("fine")
    assert fine.description == "Every query, the first document." and fine.plugin == "bench-broken"


def test_a_duplicate_name_is_an_error_naming_both(site, monkeypatch, capsys):
    _fake_dist(site, "bench-dup", "bm25 = bench_tiny_plugin_dup:run\n", "bench_tiny_plugin_dup",
               "def run(ctx): return {}\n")
    with pytest.raises(BenchError) as err:
        _forget_plugins()
    assert str(err.value).startswith("system 'bm25' is defined twice: by bench (a built-in system) and by the plugin "
                                     "bench_tiny_plugin_dup:run of the package bench-dup")
    monkeypatch.setattr(sys, "argv", ["bench", "systems"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "defined twice" in err_lines[0]


def test_two_plugins_with_one_name(site):
    _fake_dist(site, "bench-one", "twin = bench_tiny_plugin_one:run\n", "bench_tiny_plugin_one",
               "def run(ctx): return {}\n")
    _fake_dist(site, "bench-two", "twin = bench_tiny_plugin_two:run\n", "bench_tiny_plugin_two",
               "def run(ctx): return {}\n")
    with pytest.raises(BenchError, match=r"system 'twin' is defined twice: by the plugin bench_tiny_plugin_\w+:run of "
                                         r"the package bench-\w+ and by the plugin bench_tiny_plugin_\w+:run"):
        _forget_plugins()


def test_plugins_are_not_loaded_by_import_bench():
    code = "import bench, bench.systems.registry as s, sys; print(s._plugins is None, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


@pytest.mark.parametrize("body,message", [
    ("return {'nope': {'d1': 1.0}}",
     "none of the run's 1 query ids is a query of xx-en (e.g. 'nope') (is it a run of another pair?)"),
    ("return {1: {'d1': 1.0}}",
     "id 1 is a int, not a string (query and document ids are strings, as in the collection)"),
    ("return {'q1': {'d1': float('nan')}}", "run['q1']['d1'] = nan is not a finite number"),
    ("return {}", "gave an empty run: no query has a scored document (a run ranks documents for the pair's queries)"),
    ("return [('q1', 'd1', 1.0)]", "gave a list, not a run {query_id: {doc_id: score}}"),
])
def test_a_plugin_run_is_checked_like_an_external_run(site, monkeypatch, capsys, tmp_path, body, message):
    code = f"from bench.systems.plugins import system\n\n@system('a bad plugin')\ndef bad(ctx):\n    {body}\n"
    _fake_dist(site, "bench-bad-plugin", "badplug = bench_bad_plugin:bad\n", "bench_bad_plugin", code)
    monkeypatch.delitem(sys.modules, "bench_bad_plugin", raising=False)  # this case's code, not an earlier one's
    importlib.invalidate_caches()
    _forget_plugins()
    exit_code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems",
                                 "badplug", "--runs", str(tmp_path / "runs"), "--no-report")
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_code == 2 and len(lines) == 1
    assert lines[0].startswith("error: plugin system badplug (bench-bad-plugin)")
    assert lines[0].endswith(message)
    assert not (tmp_path / "runs" / "xx-en" / "badplug").exists()
