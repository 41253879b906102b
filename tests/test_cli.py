"""The CLI's contract for bad input: one line on stderr, a non-zero exit, nothing half-written."""

import os
import shutil
import sys
import urllib.error
from pathlib import Path

import pytest

from bench.infra import downloads
from cli_run import run_main

TINY = Path(__file__).parent / "data" / "tiny-pair"


def test_unknown_pair_suggests_the_closest(monkeypatch, capsys, bench_home):
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair", "sw-n")
    assert code == 2
    assert err.strip() == "error: unknown pair 'sw-n' (did you mean sw-en?)"


def test_unknown_system_suggests_the_closest(monkeypatch, capsys, bench_home):
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "bm52")
    assert code == 2 and "unknown system 'bm52'" in err and "bm25" in err


def test_malformed_pair_file_is_one_line(monkeypatch, capsys, tmp_path, bench_home):
    shutil.copytree(TINY, tmp_path / "p")
    (tmp_path / "p" / "qrels.txt").write_text("q1 0 d1\n")
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(tmp_path / "p" / "pair.yaml"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "qrels.txt:1" in err


def test_offline_without_mirror(monkeypatch, capsys, tmp_path, bench_home):
    monkeypatch.delenv("BENCH_MIRROR", raising=False)
    monkeypatch.setattr(downloads.urllib.request, "urlopen",
                        lambda url, timeout: (_ for _ in ()).throw(urllib.error.URLError("no network")))
    from bench.data.collection import forget_loaded

    forget_loaded()  # an earlier test may have loaded sw-en in this process
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair", "sw-en", "--systems", "bm25",
                            "--runs", str(tmp_path / "runs"))
    assert code == 2
    assert "cannot download https://raw.githubusercontent.com/masakhane-io/afriqa/" in err and "BENCH_MIRROR" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.integration
@pytest.mark.usefixtures("real_data")  # copies files of the mirror
def test_corrupt_mirror_file_is_refused_and_nothing_is_kept(monkeypatch, capsys, tmp_path, bench_home):
    from bench.data.collection import afriqa

    mirror = tmp_path / "mirror"
    remotes = afriqa.files_for("afriqa/sw-en/test")
    real = Path(__import__("os").environ.get("BENCH_MIRROR") or "/nonexistent")
    if not real.is_dir():
        pytest.skip("needs the mirror")
    for rf in remotes:
        (mirror / rf.mirror_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(real / rf.mirror_path, mirror / rf.mirror_path)
    bad = remotes[0]
    with open(mirror / bad.mirror_path, "a") as f:
        f.write("\n")
    monkeypatch.setenv("BENCH_MIRROR", str(mirror))
    code, _, err = run_main(monkeypatch, capsys, "fetch", "--pair", "sw-en")
    assert code == 2 and "sha256 mismatch" in err and len(err.strip().splitlines()) == 1
    assert not downloads.cached_path(bad).exists()


def test_pair_and_pair_file_are_exclusive(monkeypatch, capsys, bench_home):
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair", "sw-en", "--pair-file", "x.yaml")
    assert code == 2 and "exactly one of --pair and --pair-file" in err


def test_clirmatrix_offline_is_one_clear_line(monkeypatch, capsys, tmp_path, bench_home):
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "ird"))
    import requests

    def refuse(*args, **kwargs):  # behave as offline even on a machine with internet
        raise requests.exceptions.ConnectionError("Failed to resolve 'www.cs.jhu.edu'")

    monkeypatch.setattr(requests, "get", refuse)
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair", "en-sw", "--systems", "bm25")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: cannot load the data of clirmatrix/sw/bi139-base/en/test1")
    assert "needs the internet" in err


def test_pairs_lists_languages_and_availability(monkeypatch, capsys, bench_home):
    code, out, _ = run_main(monkeypatch, capsys, "pairs")
    assert code == 0
    sw = next(line for line in out.splitlines() if line.startswith("sw-en "))
    assert sw.split()[:6] == ["sw-en", "sw", "en", "afriqa/sw-en/test", "294", "5414"]
    assert next(line for line in out.splitlines() if line.startswith("en-fi ")).split()[1:3] == ["en", "fi"]


@pytest.mark.integration
def test_fetch_to_writes_a_mirror(monkeypatch, capsys, tmp_path, real_data):
    code, out, _ = run_main(monkeypatch, capsys, "fetch", "--pair", "sw-en", "--to", str(tmp_path / "m"))
    assert code == 0
    assert (tmp_path / "m" / "MANIFEST.tsv").exists()
    assert (tmp_path / "m" / "masakhane-io+afriqa/data/queries/swa/queries.afriqa.swa.en.test.json").exists()
    assert (tmp_path / "m" / "masakhane-io+lafand-mt/data/text_files/en-swa/train.swa").exists()  # bitext
    manifest = (tmp_path / "m" / "MANIFEST.tsv").read_text().splitlines()
    assert len(manifest) == 1 + 31  # header + AfriQA (22) + LAFAND, TICO-19, NTREX, Tatoeba, FLORES (9)


def test_sweep_with_bad_rates_or_pair_is_one_line_and_writes_nothing(monkeypatch, capsys, tmp_path, bench_home):
    code, _, err = run_main(monkeypatch, capsys, "sweep", "noise", "--pair", "sw-en", "--rates", "0,1",
                            "--reports", str(tmp_path / "r"), "--runs", str(tmp_path / "runs"))
    assert code == 2 and err.strip() == ("error: --rates must be distinct fractions in [0, 1), got '0,1' "
                                         "(e.g. --rates 0,0.2,0.4)")
    code, _, err = run_main(monkeypatch, capsys, "sweep", "noise", "--pair", "sw-en", "--rates", "0.2",
                            "--reports", str(tmp_path / "r"), "--runs", str(tmp_path / "runs"))
    assert code == 2 and err.strip() == ("error: a noise sweep needs at least two rates, got 0.2 (give two or more, "
                                         "e.g. --rates 0,0.2,0.4; for one rate: bench run --bitext-noise RATE)")
    code, _, err = run_main(monkeypatch, capsys, "sweep", "noise", "--pair", "sw-en",
                            "--systems", "optical,mdense,bm25", "--reports", str(tmp_path / "r"),
                            "--runs", str(tmp_path / "runs"))
    assert code == 2 and err.strip() == (
        "error: the noise rate changes nothing for mdense, bm25: it learns nothing from the bitext (sweep systems that "
        "do (bm25-psq, sdistill, sdistill-maxsim, optical, optical-maxsim); the zero-shot encoder's lines are drawn as "
        "references)")
    code, _, err = run_main(monkeypatch, capsys, "sweep", "noise", "--pair", "sw-n", "--reports", str(tmp_path / "r"))
    assert code == 2 and "unknown pair 'sw-n' (did you mean sw-en?)" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_main(monkeypatch, capsys, "sweep", "noise", "--pair", "sw-en", "--systems", "optcal")
    assert code == 2 and "unknown system 'optcal'" in err
    (tmp_path / "archive.json").write_text("{}")
    code, _, err = run_main(monkeypatch, capsys, "sweep", "noise", "--pair", "sw-en", "--systems", "sdistill",
                            "--archive", str(tmp_path / "archive.json"), "--reports", str(tmp_path / "r"))
    assert code == 2 and err.strip() == (f"error: --archive {tmp_path / 'archive.json'} is a file, not a directory "
                                         "(give a directory for --archive)")
    assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()


def test_train_optical_on_an_unknown_pair(monkeypatch, capsys, bench_home):
    code, _, err = run_main(monkeypatch, capsys, "train", "optical", "--pair", "sw-n")
    assert code == 2 and "unknown pair 'sw-n'" in err
    assert not (bench_home / "checkpoints").exists()


@pytest.mark.parametrize("systems,message", [
    ("", "error: --systems '' names no system"),
    (",", "error: --systems ',' names no system"),
])
def test_an_empty_system_list_is_an_error_not_every_system(monkeypatch, capsys, bench_home, systems, message):
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", systems)
    assert code == 2 and err.strip().startswith(message)


def test_an_option_no_chosen_system_reads_is_an_error(monkeypatch, capsys, bench_home, tmp_path):
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "bm25",
                            "--bitext-noise", "0.2", "--runs", str(tmp_path / "runs"))
    assert code == 2 and err.strip().startswith("error: no chosen system reads the option bitext_noise")
    assert not (tmp_path / "runs").exists()


def test_a_pair_file_report_shows_its_languages_and_description(monkeypatch, capsys, bench_home, tmp_path):
    code, _, err = run_main(monkeypatch, capsys, "--quiet", "run", "--pair-file", str(TINY / "pair.yaml"),
                            "--systems", "bm25", "--runs", str(tmp_path / "runs"),
                            "--reports", str(tmp_path / "reports"))
    assert code == 0, err
    text = (tmp_path / "reports" / "xx-en.md").read_text()
    assert "a tiny hand-made pair" in text and "Queries in xx, documents in en" in text
    assert "not registered" not in err
    html = (tmp_path / "reports" / "xx-en.html").read_text()
    assert "a tiny hand-made pair" in html and "Queries in xx, documents in en" in html


# --- run options as flags, bench systems, -q/-v/--debug after the command (issue 16) ----------------


@pytest.mark.parametrize("args,message", [
    (["--systems", "bm25", "--encoder", "multilingual-e5-small"],
     "error: no chosen system reads the option encoder (--encoder) (drop it, or choose a system that reads it"),
    (["--systems", "mdense", "--rerank", "bm52"], "error: option rerank: unknown system 'bm52' (did you mean bm25 or"),
    (["--systems", "mdense", "--rerank-depth", "ten"], "error: option rerank_depth must be a int, not 'ten'"),
    (["--systems", "mdense", "--hybrid-weight", "2"], "error: option hybrid_weight must be in [0, 1], not 2.0"),
    (["--systems", "mdense", "--encoder", "multilingual-e5-smal"],
     "error: option encoder: model 'multilingual-e5-smal' is not in the local Hugging Face cache, and the hub"),
    (["--systems", "bm25", "--measures", "AP,ndcg@10"], "error: unknown measure in ['AP', 'ndcg@10']"),
    (["--systems", "bm25", "--baseline", "oracle-bm25"],
     "error: baseline 'oracle-bm25' is not among the chosen systems and has no run under"),
    (["--systems", "bm25", "--baseline", "bm25", "--no-report"], "error: --baseline is the report's baseline"),
])
def test_bad_run_options_are_one_line_before_anything_runs(monkeypatch, capsys, bench_home, tmp_path, args, message):
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"),
                            "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports"), *args)
    assert code == 2, err
    assert err.strip().startswith(message) and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()


def test_a_typo_of_a_packaged_encoder_names_it(monkeypatch, capsys, bench_home, tmp_path):
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems", "mdense",
                            "--encoder", "multilingual-e5-smal", "--runs", str(tmp_path / "runs"))
    assert code == 2 and err.strip().endswith("(did you mean multilingual-e5-small?)")


def test_options_are_checked_against_the_default_systems_too(monkeypatch, capsys, bench_home, tmp_path):
    # documents not in English: the NMT systems are not among the defaults (without --mt-model), and they
    # are the only ones that read --mt-steps
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair-foreign-docs.yaml"),
                            "--mt-steps", "5", "--runs", str(tmp_path / "runs"))
    assert code == 2 and err.strip().startswith("error: no chosen system reads the option mt_steps (--mt-steps)")
    assert not (tmp_path / "runs").exists()


def test_measures_baseline_and_verbosity_after_the_command(monkeypatch, capsys, bench_home, tmp_path):
    import logging

    root = logging.getLogger()
    before = root.level
    try:
        code, out, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"),
                                  "--systems", "bm25,oracle-bm25", "--measures", "P@1,R@2", "--baseline", "oracle-bm25",
                                  "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports"), "-q")
        assert code == 0, err
        assert root.level == logging.ERROR  # -q: errors only
    finally:
        root.setLevel(before)
    header = next(line for line in out.splitlines() if line.startswith("system"))
    assert header.split() == ["system", "P@1", "R@2", "time", "(s)"]
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()
            if line.startswith(("bm25 ", "oracle-bm25 "))}
    # bm25: every first document is relevant (P@1 1); q2 finds only d3 of d2, d3 (R@2 (1 + 1/2 + 1) / 3)
    assert rows == {"bm25": ["1.0000", "0.8333"], "oracle-bm25": ["1.0000", "1.0000"]}
    report = (tmp_path / "reports" / "xx-en.md").read_text()
    assert "## Against the baseline (oracle-bm25)" in report and "| oracle-bm25 (baseline)" in report


@pytest.mark.parametrize("args", [["--debug", "run", "--pair", "sw-n"], ["run", "--pair", "sw-n", "--debug"],
                                  ["train", "mt", "--debug", "--pair", "sw-n"]])
def test_debug_before_or_after_the_command_shows_the_traceback(monkeypatch, capsys, bench_home, args):
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="unknown pair 'sw-n'"):
        run_main(monkeypatch, capsys, *args)


@pytest.mark.parametrize("args,level", [(["pairs", "-v"], "INFO"), (["-v", "pairs", "-v"], "DEBUG"),
                                        (["pairs", "-q"], "ERROR"), (["-vv", "sweep", "--help"], "DEBUG")])
def test_verbosity_flags_work_on_every_command(monkeypatch, capsys, bench_home, args, level):
    import logging

    root = logging.getLogger()
    before = root.level
    try:
        code, _, _ = run_main(monkeypatch, capsys, *args)
        assert code == 0 and logging.getLevelName(root.level) == level
    finally:
        root.setLevel(before)


def test_systems_lists_descriptions_and_the_options_they_read(monkeypatch, capsys, bench_home):
    code, out, _ = run_main(monkeypatch, capsys, "systems")
    assert code == 0
    lines = out.splitlines()
    entries = {lines[i].split()[0]: (lines[i], lines[i + 1].split(None, 1)[1]) for i in range(0, 28, 2)}
    assert entries["bm25"] == ("bm25             Lucene BM25 on the untranslated query (the floor)",
                               "--bm25-k1, --bm25-b")
    assert entries["mdense"][1] == "--encoder, --rerank, --rerank-depth, --max-length, --memory-budget, --quantize"
    assert entries["oracle-dense"][0].endswith("[needs translated queries]")
    assert entries["optical-hybrid"][1].startswith("--hybrid-weight, --bitext-noise, --distill-steps")
    assert "options (flags of bench run):" in lines
    assert any(line.split()[:2] == ["--rerank-depth", "how"] for line in lines)


def test_sweep_takes_the_model_flags_and_checks_them(monkeypatch, capsys, bench_home, tmp_path):
    code, _, err = run_main(monkeypatch, capsys, "sweep", "noise", "--pair", "sw-en", "--systems", "bm25-psq",
                            "--hybrid-weight", "0.3", "--runs", str(tmp_path / "runs"),
                            "--reports", str(tmp_path / "r"))
    assert code == 2 and err.strip().startswith("error: no chosen system reads the option hybrid_weight")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "r").exists()


def test_progress_bars_only_on_a_terminal_and_never_under_quiet(monkeypatch):
    """Issue 26: a CI log (stderr not a terminal) gets no progress bar, a terminal does unless -q."""
    import io

    from bench.infra import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(progress, "_state", {"quiet": False})
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress.bar(range(3)).disable is True  # a log file or pipe
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress.bar(range(3)).disable is False and progress.bar(range(3), disable=True).disable is True
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    progress.quiet()
    assert progress.bar(range(3)).disable is True and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


def test_a_dry_run_prints_the_plan_and_writes_nothing(monkeypatch, capsys, bench_home, tmp_path):
    """Issue 26: `bench run --dry-run` checks everything, prints the systems and what a first run builds, and
    runs nothing."""
    pair = tmp_path / "pair"
    shutil.copytree(TINY, pair)
    (pair / "bitext.tsv").write_text("paka\tcat\nmbwa\tdog\n")
    with open(pair / "pair.yaml", "a") as f:
        f.write("bitext: bitext.tsv\n")
    code, out, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(pair / "pair.yaml"), "--systems",
                              "bm25,bm25-psq,oracle-bm25", "--runs", str(tmp_path / "runs"), "--dry-run")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("plan: 3 system(s) on xx-en (") and lines[0].endswith(
        "depth 1000, seed 0, measures AP, RR@10")
    assert lines[1:] == [
        "  systems: bm25 (lexical), bm25-psq (translation), oracle-bm25 (ceiling)",
        "  artifacts the runs need, each built once: 2, 0 of them trainings",
        "    build  Lucene index of xx-en: 4 documents at 1,000 documents a second (default rate, not measured "
        "here), about 0 s",
        # the bitext's second pair is the query "mbwa": the leakage guard drops it
        "    build  IBM1 table of xx-en: 1 bitext pair at 1,000 bitext pairs a second (default rate, not measured "
        "here), about 0 s",
        "  estimated time to build and train: about 0 s (retrieval and scoring not included)",
        f"  runs in {tmp_path / 'runs' / 'xx-en'}, report in reports", "nothing was run (--dry-run)"]
    assert not (tmp_path / "runs").exists() and not any((bench_home).glob("indexes/*"))
    assert not any(bench_home.glob("translation-tables/*")) and not (bench_home / "rates.json").exists()


def test_the_report_is_rewritten_after_each_system(monkeypatch, capsys, bench_home, tmp_path):
    """Issue 26: a long run's report grows as it goes: after each system, the pair's report holds the runs
    stored so far."""
    from bench.results import report as report_module

    seen = []
    real = report_module.write_pair_report

    def recording(pair, runs_root, reports_dir, **kwargs):
        seen.append(sorted(p.name for p in (Path(runs_root) / pair).iterdir()))
        return real(pair, runs_root, reports_dir, **kwargs)

    monkeypatch.setattr(report_module, "write_pair_report", recording)
    code, _, err = run_main(monkeypatch, capsys, "run", "--pair-file", str(TINY / "pair.yaml"), "--systems",
                            "bm25,oracle-bm25", "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path / "rep"))
    assert code == 0, err
    assert seen == [["bm25"], ["bm25", "oracle-bm25"], ["bm25", "oracle-bm25"]]  # after each, then the final one
    assert (tmp_path / "rep" / "xx-en.md").is_file()
