"""Running a grid plan (:mod:`bench.experiment.grid`): one task at a time in this process, or on Ray.

Every need and every cell of a :class:`~bench.experiment.grid.GridPlan` is a task. In-process they run in the
plan's order (:meth:`~bench.experiment.grid.GridPlan.tasks`). On Ray each is a remote task, submitted in the
same order with the ObjectRefs of what it needs as arguments, so Ray starts it once they are built:
needs and cells on one CPU, trainings and encodings on one GPU where the cluster has GPUs. Ray is a
local one (``local``: ``--max-parallel`` CPUs, default the machine's), the cluster this machine
belongs to (``auto``) or the cluster at an address.

A task never raises: it returns its outcome, an error as one line (a :class:`BenchError`'s message
and hint), so a need that fails fails the tasks that need it, named, and every other task goes on.
A task whose worker dies is run again up to ``retries`` times, then reported as failed; what it was
building is never visible half-written (artifacts and runs are renamed into place when complete).
Workers get bench's environment (``BENCH_HOME``, ``BENCH_MIRROR``, ``HF_HUB_OFFLINE``,
``BENCH_DEVICE``, ...) as the job's ``runtime_env`` and again with each task, and one thread per
task (``BENCH_THREADS``, unless it is set). Every task reports when it starts and ends, so the
progress shows cells done, running and queued. On Ray each pair's report is a task too, run once
the pair's cells have ended; the leaderboard is written last, here (:func:`write_reports`). What the
workers print stays in Ray's log directory, named when Ray starts, not on the terminal (unless --debug).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.errors import BenchError
from bench.experiment.grid import Cell, GridPlan
from bench.infra import library_output
from bench.systems.needs import Need

log = logging.getLogger(__name__)

ENV_PREFIXES = ("BENCH_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "IR_DATASETS_", "PYSERINI_", "TOKENIZERS_",
                "JAVA_", "JDK_", "TORCH_", "TQDM_")


@dataclass
class Outcome:
    """How one task ended."""

    kind: str  # "need" or "cell"
    label: str
    ok: bool
    error: str | None = None
    path: str | None = None  # the artifact's directory, the run's directory
    built: bool | None = None  # a need: built by this task (False: found complete)
    seconds: float = 0.0


@dataclass
class GridResult:
    outcomes: dict[tuple, Outcome]  # by task key: a need's key, ("cell", pair, run) for a cell
    reported: dict[str, list[Path]] = field(default_factory=dict)  # pair -> its report's files, written by a task

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes.values() if o.kind == "cell" and not o.ok]

    @property
    def cells(self) -> list[Outcome]:
        return [o for o in self.outcomes.values() if o.kind == "cell"]


def task_key(task: Need | Cell) -> tuple:
    return task.key if isinstance(task, Need) else ("cell", *task.key)


def one_line(exc: BaseException) -> str:
    if isinstance(exc, BenchError):
        return str(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"unexpected {type(exc).__name__}: {text}"


# --- the tasks (module functions: Ray sends them by reference) ----------------------------------------------


def environment() -> dict[str, str]:
    """What a worker must see of this process's environment."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}


def _enter(env: dict[str, str] | None) -> None:
    """Apply the driver's environment in a (reused) worker; forget what was read under another store."""
    if env is None:
        return
    moved = any(os.environ.get(k) != env.get(k) for k in ("BENCH_HOME", "BENCH_MIRROR"))
    for k in [k for k in os.environ if k.startswith(ENV_PREFIXES) and k not in env]:
        del os.environ[k]
    os.environ.update(env)
    if moved:
        from bench.data.collection import forget_loaded

        forget_loaded()
    level = int(env.get("_BENCH_LOG_LEVEL", logging.WARNING))
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger().setLevel(level)


def _failed_dependency(done: tuple[dict, ...]) -> dict | None:
    bad = next((d for d in done if not d.get("ok")), None)
    return None if bad is None else {"ok": False, "error": f"needs {bad['label']}, which failed: {bad['error']}"}


class Events:
    """Ray actor: tasks say when they start. A task sends without waiting (a task waiting on Ray lends
    its CPU to another task, which would run more tasks than CPUs)."""

    def __init__(self):
        self.items: list[tuple] = []

    def put(self, item: tuple) -> None:
        self.items.append(item)

    def take(self) -> list[tuple]:
        items, self.items = self.items, []
        return items


def _started(events, key: tuple) -> None:
    if events is not None:
        events.put.remote((key, socket.gethostname()))


def _begin(task, env: dict | None, events, done) -> tuple[dict, dict | None]:
    """A task's start: tell the driver, name it, and unless a dependency failed, set up its environment."""
    _started(events, task_key(task))
    out = {"label": task.label, "host": socket.gethostname()}
    failed = _failed_dependency(done)
    if not failed:
        _enter(env)
    return out, failed


def need_task(need: Need, env: dict | None, events, *done: dict) -> dict:
    """Build one need (after the needs it is built from: ``done``, their outcomes)."""
    out, failed = _begin(need, env, events, done)
    if failed:
        return {**out, **failed}
    t0, started_ns = time.perf_counter(), time.time_ns()
    try:
        path = need.build()
    except Exception as exc:  # its one line, for the driver: the other tasks go on
        log.debug("%s failed", need.label, exc_info=True)
        return {**out, "ok": False, "error": one_line(exc), "seconds": time.perf_counter() - t0}
    built = None
    if path is not None and (Path(path) / "key.json").exists():
        built = (Path(path) / "key.json").stat().st_mtime_ns >= started_ns - 10**9  # written by this task
    return {**out, "ok": True, "path": None if path is None else str(path), "built": built,
            "seconds": time.perf_counter() - t0}


def cell_task(cell: Cell, runs_root: str, depth: int, measures, env: dict | None, events, *done: dict) -> dict:
    """Run one cell (its :class:`~bench.experiment.plan.RunPlan`: its system, seed and options) after its needs."""
    out, failed = _begin(cell, env, events, done)
    if failed:
        return {**out, **failed}
    t0 = time.perf_counter()
    try:
        [result] = cell.plan(Path(runs_root), depth, measures).execute()
    except Exception as exc:
        log.debug("%s failed", cell.label, exc_info=True)
        return {**out, "ok": False, "error": one_line(exc), "seconds": time.perf_counter() - t0}
    return {**out, "ok": True, "path": str(result.path), "seconds": time.perf_counter() - t0}


def report_task(pair: str, ref: str, runs_root: str, reports_dir: str, env: dict | None, *cells: dict) -> list[str]:
    """A pair's report, once its cells have ended (on Ray: beside the other pairs' cells); ``ref``: the pair's
    name or pair file, as its cells name it."""
    _enter(env)
    from bench.data.pair_ref import resolve_pair
    from bench.experiment.reporting import write_report
    from bench.results.runs import load_runs

    if not load_runs(Path(runs_root), pair):  # every cell failed, and none ran before
        return []
    return [str(p) for p in write_report(pair, Path(runs_root), Path(reports_dir), given=resolve_pair(ref))]


# --- progress -----------------------------------------------------------------------------------------------


class Progress:
    """Counts of the cells (done, running, queued) and needs, and a line for each change."""

    def __init__(self, plan: GridPlan, echo: Callable[[str], None]):
        self.echo = echo
        self.cells = {task_key(c) for c in plan.cells}
        self.needs = {n.key for n in plan.needs}
        self.running: set[tuple] = set()
        self.done: set[tuple] = set()
        self.failed: set[tuple] = set()

    def counts(self) -> str:
        cells_done = len(self.done & self.cells)
        running = len(self.running & self.cells)
        queued = len(self.cells) - cells_done - running
        needs = f", needs {len(self.done & self.needs)}/{len(self.needs)}" if self.needs else ""
        failed = f", {len(self.failed & self.cells)} failed" if self.failed & self.cells else ""
        return f"[cells {cells_done}/{len(self.cells)} done, {running} running, {queued} queued{failed}{needs}]"

    def started(self, key: tuple, label: str, host: str = "") -> None:
        if key in self.running or key in self.done:
            return
        self.running.add(key)
        self.echo(f"{self.counts()} started {label}" + (f" on {host}" if host and host != socket.gethostname() else ""))

    def finished(self, key: tuple, outcome: Outcome) -> None:
        self.running.discard(key)
        self.done.add(key)
        if outcome.ok:
            what = "reused" if outcome.built is False else "built" if outcome.kind == "need" else "done"
            self.echo(f"{self.counts()} {what} {outcome.label} ({outcome.seconds:.1f} s)")
        else:
            self.failed.add(key)
            self.echo(f"{self.counts()} FAILED {outcome.label}: {outcome.error}")


def _outcome(task: Need | Cell, raw: dict) -> Outcome:
    kind = "need" if isinstance(task, Need) else "cell"
    return Outcome(kind, raw.get("label") or task.label, bool(raw.get("ok")), raw.get("error"), raw.get("path"),
                   raw.get("built"), float(raw.get("seconds") or 0.0))


# --- running a plan ------------------------------------------------------------------------------------------


def run_plan(plan: GridPlan, *, ray: str | None = None, max_parallel: int | None = None, retries: int = 1,
             echo: Callable[[str], None] | None = None, quiet: bool = False) -> GridResult:
    """Run every task of ``plan`` (in-process when ``ray`` is None; else on Ray: ``local``, ``auto`` or
    a cluster's address) and return their outcomes; failures are outcomes, not exceptions."""
    progress = Progress(plan, echo or log.info)
    if ray is None:
        return _run_here(plan, progress)
    return _run_on_ray(plan, progress, address=ray, max_parallel=max_parallel, retries=retries, quiet=quiet)


def _run_here(plan: GridPlan, progress: Progress) -> GridResult:
    raws: dict[tuple, dict] = {}
    outcomes: dict[tuple, Outcome] = {}
    spec = plan.spec
    for task in plan.tasks():
        key = task_key(task)
        progress.started(key, task.label)
        done = tuple(raws[k] for k in (task.after if isinstance(task, Need) else task.needs))
        if isinstance(task, Need):
            raws[key] = need_task(task, None, None, *done)
        else:
            raws[key] = cell_task(task, str(spec.runs), spec.depth, plan.measures, None, None, *done)
        outcomes[key] = _outcome(task, raws[key])
        progress.finished(key, outcomes[key])
    return GridResult(outcomes)


def _init_ray(address: str, max_parallel: int | None, env: dict) -> Path | None:
    """Start or join Ray unless this process already did (a test, a notebook); if started here, the directory
    of its logs, where its workers' output goes (printed through this process under --debug only, as are
    Ray's own warnings)."""
    import ray

    if ray.is_initialized():
        if max_parallel:
            log.info("Ray is running already: --max-parallel does not resize it")
        return None
    shown = library_output.shown()
    common = dict(runtime_env={"env_vars": env}, log_to_driver=shown,
                  logging_level=logging.WARNING if shown else logging.ERROR)
    if address == "local":
        context = ray.init(num_cpus=max_parallel or len(os.sched_getaffinity(0)), include_dashboard=False, **common)
    else:
        if max_parallel:
            raise BenchError("--max-parallel sizes a local Ray; a cluster runs as many tasks as its resources allow",
                             "drop --max-parallel, or use --ray local")
        try:
            context = ray.init(address=address, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BenchError(f"cannot join the Ray cluster at {address}: {one_line(exc)}",
                             "start it with `ray start --head`, or use --ray local") from None
    return Path(context.address_info["session_dir"]) / "logs"


def _run_on_ray(plan: GridPlan, progress: Progress, *, address: str, max_parallel: int | None, retries: int,
                quiet: bool) -> GridResult:
    import ray

    env = environment()
    env.setdefault("BENCH_THREADS", "1")  # a task has one CPU
    env["_BENCH_LOG_LEVEL"] = str(logging.getLogger().getEffectiveLevel())
    logs = _init_ray(address, max_parallel, env)
    started_here = logs is not None
    if started_here and not quiet and not library_output.shown():
        progress.echo(f"Ray workers' output goes to {logs} (worker-*.out and worker-*.err, on each node)")
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        remote_need, remote_cell, remote_report = ray.remote(need_task), ray.remote(cell_task), ray.remote(report_task)
        events = ray.remote(num_cpus=0)(Events).remote()
        spec, refs, tasks = plan.spec, {}, {}
        for task in plan.tasks():
            key = task_key(task)
            if isinstance(task, Need):
                resources = {"num_cpus": 1, "num_gpus": 1 if task.gpu and gpus else 0}
                deps = [refs[k] for k in task.after if k in refs]
                refs[key] = remote_need.options(max_retries=retries, **resources).remote(task, env, events, *deps)
            else:
                deps = [refs[k] for k in task.needs]
                refs[key] = remote_cell.options(num_cpus=1, max_retries=retries).remote(
                    task, str(Path(spec.runs).resolve()), spec.depth, plan.measures, env, events, *deps)
            tasks[refs[key]] = (key, task)
        reporting = {} if spec.no_report else {  # each pair's report as soon as its cells are done
            remote_report.options(num_cpus=1).remote(pair, pair_refs(plan).get(pair, pair),
                                                     str(Path(spec.runs).resolve()),
                                                     str(Path(spec.reports).resolve()), env,
                                                     *[refs[k] for k in refs if k[:2] == ("cell", pair)]): pair
            for pair in plan.pairs if any(c.pair == pair for c in plan.cells)}
        outcomes: dict[tuple, Outcome] = {}
        pending = list(tasks)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for key, host in ray.get(events.take.remote()):
                progress.started(key, tasks[refs[key]][1].label, host)
            for ref in ready:
                key, task = tasks[ref]
                try:
                    raw = ray.get(ref)
                except ray.exceptions.RayError as exc:  # its worker died, or a need's did
                    raw = {"ok": False, "error": _ray_error(exc, task, outcomes)}
                outcomes[key] = _outcome(task, raw)
                progress.started(key, task.label)
                progress.finished(key, outcomes[key])
        reported = {}
        for ref, pair in reporting.items():  # a report that failed is written again by write_reports
            try:
                reported[pair] = [Path(p) for p in ray.get(ref)]
            except ray.exceptions.RayError as exc:
                log.warning("the report of %s failed on Ray (%s): writing it here", pair, one_line(exc))
        ray.kill(events)
        return GridResult(outcomes, reported)
    finally:
        if started_here:
            ray.shutdown()


def _ray_error(exc: BaseException, task: Need | Cell, outcomes: dict[tuple, Outcome]) -> str:
    for key in task.after if isinstance(task, Need) else task.needs:
        if key in outcomes and not outcomes[key].ok:
            return f"needs {outcomes[key].label}, which failed: {outcomes[key].error}"
    import ray

    if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return "its worker died (killed, or out of memory) and was not retried"
    return one_line(getattr(exc, "cause", None) or exc)


def pair_refs(plan: GridPlan) -> dict[str, str]:
    """Each pair's name -> its reference as the cells name it (a built-in name or a pair file's path)."""
    return {cell.pair: cell.ref for cell in [*plan.done, *plan.cells]}


def write_reports(plan: GridPlan, result: GridResult | None = None) -> list[Path]:
    """Each pair's report (unless a task of ``result`` wrote it) and the leaderboard, rebuilt from the
    stored runs (as ``bench report``)."""
    from bench.data.pair_ref import resolve_pair
    from bench.experiment.reporting import write_report
    from bench.results.report import write_leaderboard
    from bench.results.runs import load_runs

    runs, reports = Path(plan.spec.runs), Path(plan.spec.reports)
    done = result.reported if result else {}
    written = [p for pair in plan.pairs for p in done.get(pair, [])]
    for pair in plan.pairs:
        if pair not in done and load_runs(runs, pair):
            written += write_report(pair, runs, reports, given=resolve_pair(pair_refs(plan).get(pair, pair)))
    if load_runs(runs):
        written += write_leaderboard(runs, reports)
    return written
