"""The root of the ``bench`` command line: the group, its logging, and the one-line errors of :func:`main`.

Every expected failure is a :class:`BenchError`, printed as one line with a hint and a non-zero exit
code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from bench.cli.common import LOG_FLAGS, LOG_STATE, SETUP_LOGGING, BenchGroup
from bench.errors import BenchError
from bench.infra import library_output, progress
from bench.infra.environment import check_environment

log = logging.getLogger("bench")

EXIT_ERROR = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a writer whose reader has gone


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = (logging.ERROR if quiet else logging.WARNING if not verbose else logging.INFO if verbose == 1
             else logging.DEBUG)
    progress.quiet(quiet)  # progress bars: on a terminal only, and never under -q
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(level)  # again: -q/-v after the command name set the level a second time
    for noisy in ("urllib3", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # ir_datasets logs each failed download attempt itself; offline, bench's one error line says it all
    import ir_datasets.util.download

    ir_datasets.util.download._logger.logger().setLevel(logging.NOTSET if verbose else logging.ERROR)


def _log_flags(fn):
    """-q/-v/--debug before the command (:data:`bench.cli.common.LOG_FLAGS`; each command takes them after too)."""
    for opts, kwargs in reversed(LOG_FLAGS):
        fn = click.option(*opts, **kwargs)(fn)
    return fn


@click.group(cls=BenchGroup)
@_log_flags
@click.version_option(package_name="bench")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, quiet: bool) -> None:
    """bench: cross-lingual retrieval benchmarks for low-resource languages."""
    ctx.obj = {"debug": debug}
    ctx.meta[LOG_STATE] = {"debug": debug, "verbose": verbose, "quiet": quiet}  # -q/-v/--debug after a command add up
    ctx.meta[SETUP_LOGGING] = _setup_logging
    _setup_logging(verbose, quiet)


def _invoke(args: list[str]) -> None:
    """Run the command without click's own KeyboardInterrupt handling (which prints a blank line)."""
    if any(k.startswith("_BENCH_COMPLETE") for k in os.environ):  # shell completion: click's own main
        return cli.main(args, prog_name="bench")
    try:
        with cli.make_context("bench", list(args)) as ctx:
            cli.invoke(ctx)
    except click.exceptions.Exit as exc:  # --help, --version
        if exc.exit_code:
            sys.exit(exc.exit_code)


def main() -> None:
    """Console entry point: one line per error, non-zero exit, traceback only with --debug; a stop
    (SIGTERM, SIGINT) is one line and exit 128 + the signal, whatever exception it surfaced as."""
    from bench.infra import interrupts

    debug = "--debug" in sys.argv[1:]
    library_output.show(debug)  # Java's output, transformers' bars, Ray workers' logs: as printed under --debug
    code = 0
    try:
        interrupts.install()  # SIGTERM and SIGINT unwind like Ctrl-C, JVM or not, and never hang
        check_environment()  # a bad BENCH_* value: one line, before any work
        _invoke(sys.argv[1:])
    except BaseException as exc:  # each kind becomes one line below
        if interrupts.received() is not None or isinstance(exc, (KeyboardInterrupt, click.exceptions.Abort)):
            log.debug("stopped: %s", type(exc).__name__, exc_info=exc)
            interrupts.exit_stopped()
        if isinstance(exc, SystemExit):
            code = exc.code
        elif isinstance(exc, BrokenPipeError):  # `bench pairs | head`: the reader has gone; nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit stays quiet
            code = EXIT_BROKEN_PIPE
        elif not isinstance(exc, Exception) or debug:
            raise
        elif isinstance(exc, BenchError):
            click.echo(f"error: {exc}", err=True)
            code = EXIT_ERROR
        elif isinstance(exc, click.ClickException):
            exc.show()
            code = exc.exit_code
        else:  # a bug, not bad input: say so in one line, traceback with --debug
            click.echo(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                       err=True)
            code = 1
    finally:
        interrupts.settle()  # a signal during the interpreter's shutdown ends it with the same one line
    if interrupts.received() is not None:  # a library swallowed the interrupt: still a stop
        interrupts.exit_stopped()
    interrupts.exit_program(code, main)
