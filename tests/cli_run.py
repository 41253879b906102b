"""Run the ``bench`` console entry point in-process: (exit code, stdout, stderr)."""

import sys
from pathlib import Path

from bench import cli

from bench.infra import interrupts


def run_main(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["bench", *args])
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        interrupts.uninstall()  # main() leaves its signal handlers installed for the process
    out, err = capsys.readouterr()
    return code, out, err


def clean_bm25_run(root: Path, pair_file: Path) -> Path:
    """A clean in-process `bench run` of bm25 on ``pair_file`` under ``root`` (its own BENCH_HOME); its run dir."""
    import pytest

    from bench.data.collection import forget_loaded

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_HOME", str(root / "home"))
        forget_loaded()
        mp.setattr(sys, "argv", ["bench", "-q", "run", "--pair-file", str(pair_file), "--systems", "bm25",
                                 "--runs", str(root / "runs"), "--no-report"])
        try:
            cli.main()
        finally:
            interrupts.uninstall()
    return root / "runs" / "xx-en" / "bm25"
