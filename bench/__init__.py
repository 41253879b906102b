"""bench: a benchmark harness for cross-lingual information retrieval on low-resource languages.

The Python API (:mod:`bench.api`)::

    import bench

    results = bench.run("sw-en", systems=["bm25", "mdense"])   # runs, scores and stores them
    results.table()                                             # systems × measures, mean and 95% CI
    mine = bench.evaluate("sw-en", "my-run.trec")               # a run made elsewhere, not stored
    (results + mine).compare("bm25")                            # head-to-head against bm25

``import bench`` stays light (no torch): it registers bench's own datasets in ir_datasets (lazily built,
so ``ir_datasets.load("afriqa/sw-en/test")`` works after it) and imports the API on first use.
``bench.evaluate`` is at once the scoring module (``bench.evaluate.per_query``) and, called, the API's
:func:`bench.api.evaluate`.
"""

import sys as _sys
import types as _types

__version__ = "0.1.0"

_API = ("run", "Results")


class _ScoringModule(_types.ModuleType):
    """The module ``bench.evaluate``, callable as :func:`bench.api.evaluate`."""

    def __call__(self, pair, run, **kwargs):
        from bench.api import evaluate

        return evaluate(pair, run, **kwargs)


class _Package(_types.ModuleType):
    def __setattr__(self, name, value):
        # the import system sets bench.evaluate to the submodule when it is first imported: make it callable
        if name == "evaluate" and isinstance(value, _types.ModuleType) and not isinstance(value, _ScoringModule):
            value.__class__ = _ScoringModule
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


def __getattr__(name):
    if name in _API:
        from bench import api

        return getattr(api, name)
    if name == "evaluate":
        import importlib

        return importlib.import_module("bench.evaluate")
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API, "evaluate"])


try:
    from bench.collections import register_builtin as _register_builtin  # noqa: E402
except ModuleNotFoundError as _missing:  # a torch-only machine (benchmarks/gpu_check.py): no collections there
    if _missing.name != "ir_datasets":
        raise
else:
    _register_builtin()
