"""bench: a benchmark harness for cross-lingual information retrieval on low-resource languages.

The Python API (:mod:`bench.api`)::

    import bench

    results = bench.run("sw-en", systems=["bm25", "mdense"])   # runs, scores and stores them
    results.table()                                             # systems × measures, mean and 95% CI
    mine = bench.evaluate("sw-en", "my-run.trec")               # a run made elsewhere, not stored
    (results + mine).compare("bm25")                            # head-to-head against bm25
    bench.fuse("sw-en", ["bm25", "mdense"], "rrf")              # a stored fused run, like any system's
    bench.load("sw-en").top("rrf-bm25-mdense", "q1")            # stored runs read again; a query's best documents

``import bench`` stays light (no torch): it registers bench's own datasets in ir_datasets (lazily built,
so ``ir_datasets.load("afriqa/sw-en/test")`` works after it) and imports the API on first use.
The packages are the layers of ``docs/LAYOUT.md``: ``cli``, ``experiment``, ``systems``, ``results``,
``methods``, ``data``, ``infra``.
"""

__version__ = "0.1.0"

_API = ("run", "evaluate", "fuse", "load", "Results")


def __getattr__(name):
    if name in _API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])


try:
    from bench.data.collection import register_builtin as _register_builtin  # noqa: E402
except ModuleNotFoundError as _missing:  # a torch-only machine (benchmarks/gpu_check.py): no collections there
    if _missing.name != "ir_datasets":
        raise
else:
    _register_builtin()
