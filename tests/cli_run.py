"""Run the ``bench`` console entry point in-process: (exit code, stdout, stderr)."""

import sys

from bench import cli, interrupts


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
