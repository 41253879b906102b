"""The ``bench`` command line, one module per command family (DESIGN.md §5).

:mod:`.root` is the group and :func:`main` (one line per error, ``--debug`` for the traceback); the
commands: :mod:`.data` (pairs, fetch, systems), :mod:`.run` (run, eval), :mod:`.fuse` (fuse), :mod:`.results`
(report, check), :mod:`.train` (train, sweep), :mod:`.grid` (grid); :mod:`.common`: what they share.
"""

from bench.cli.data import fetch_cmd, pairs_cmd, systems_cmd
from bench.cli.fuse import fuse_cmd
from bench.cli.grid import grid_cmd
from bench.cli.results import check_cmd, report_cmd
from bench.cli.root import cli, main
from bench.cli.run import eval_cmd, run_cmd
from bench.cli.train import sweep_group, train_group

for _command in (pairs_cmd, fetch_cmd, systems_cmd, run_cmd, eval_cmd, fuse_cmd, report_cmd, check_cmd, train_group,
                 sweep_group, grid_cmd):
    cli.add_command(_command)

__all__ = ["cli", "main"]
