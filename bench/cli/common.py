"""What bench's click commands share: -q/-v/--debug on every command, run options as flags, listings.

- :class:`BenchGroup`: every command and sub-group added to it also takes ``-q``, ``-v`` and ``--debug``
  after its name (``bench run --pair sw-en -v``), added to those given before it (``bench -v run``);
  logging is set again through the ``setup_logging`` the root command puts in ``ctx.meta``.
- :func:`option_flags`: a flag per run option (``--rerank-depth``), generated from the options'
  declarations (:class:`bench.systems.options.RunOptions`), passed as a keyword and validated there (a
  bad value is one line, not a usage screen).
- :func:`execution_flags`: ``--device``, ``--batch-tokens`` and ``--cpu-runtime``, execution settings rather than
  run options (no system's identity changes with them), carried in the environment (``BENCH_DEVICE``,
  ``BENCH_BATCH_TOKENS``, ``BENCH_CPU_RUNTIME``, read by :mod:`bench.infra.devices`) for the command and the
  processes it starts; a device this machine lacks, or OpenVINO asked for and absent, is one line before anything
  runs. :class:`BenchGroup` adds them to the
  commands that run models (:data:`DEVICE_COMMANDS`).
- :func:`pair_given`: the pair of ``--pair`` or ``--pair-file``; :func:`echo_means`: the final table of the
  commands that store runs (``bench run``, ``bench eval``, ``bench fuse``).
- :func:`systems_listing`: the lines of ``bench systems``.
"""

from __future__ import annotations

import os
from pathlib import Path
from dataclasses import fields

import click

from bench.errors import BenchError
from bench.infra import devices, environment, openvino_runtime
from bench.infra.store import bench_home, check_dir
from bench.systems.options import HELP, RunOptions, flag

LOG_STATE = "bench.log"  # ctx.meta keys: the flags seen so far, and the function that applies them
SETUP_LOGGING = "bench.setup_logging"
LONG_RUN_S = 180  # a run or grid whose builds are estimated longer prints its plan first (on stderr)

LOG_FLAGS = (
    (("--debug",), dict(is_flag=True, help="Show the traceback of an error.")),
    (("-v", "--verbose"), dict(count=True, help="Progress logs (-v: INFO, -vv: DEBUG; default: warnings only).")),
    (("-q", "--quiet"), dict(is_flag=True, help="Errors only (no warnings, no progress bars).")),
)


# Commands that run models, as (group, command) when added to a BenchGroup (the root group is `cli`):
# they take --device, --batch-tokens and --cpu-runtime
DEVICE_COMMANDS = {("cli", "run"), ("cli", "grid"), ("train", "mt"), ("train", "optical"), ("sweep", "noise")}
_ENV = {"device": devices.DEVICE_ENV, "batch_tokens": devices.BATCH_TOKENS_ENV, "cpu_runtime": devices.CPU_RUNTIME_ENV}
_EXECUTION_FLAGS = (
    (("--device",), dict(metavar="auto|cpu|cuda|cuda:N", help="Where the models run (default: BENCH_DEVICE, else "
                         "auto: CUDA when torch sees a GPU). Not part of any artifact's identity.")),
    (("--batch-tokens",), dict(type=click.IntRange(min=1), metavar="N", help="Padded tokens per inference batch "
                               "(default: BENCH_BATCH_TOKENS, else sized for the device).")),
    (("--cpu-runtime",), dict(type=click.Choice(environment.CPU_RUNTIMES), help="What runs the encoders on the CPU "
                              f"(default: BENCH_CPU_RUNTIME, else {environment.CPU_RUNTIMES[0]}; openvino: 1.26x "
                              "faster at equal MAP, needs the openvino extra). Not part of any artifact's identity.")),
)


def check_dirs(*options: tuple[str, Path | None, bool]) -> None:
    """``(option, path or None, written?)`` each, and BENCH_HOME: a directory option that cannot serve is an
    error before any work (:func:`bench.infra.store.check_dir`); one that is only read must exist."""
    bench_home()
    for name, path, write in options:
        if path is None:
            continue
        check_dir(path, name, write)
        if not write and not Path(path).is_dir():
            raise BenchError(f"{name} {path}: no such directory", f"{name} must name an existing directory")


def execution_flag(ctx: click.Context, param: click.Parameter, value) -> None:
    """--device / --batch-tokens / --cpu-runtime: set for this command (and the processes it starts) in the
    environment, restored when the command ends; a device asked for here or in BENCH_DEVICE, and OpenVINO asked
    for here or in BENCH_CPU_RUNTIME, are checked now."""
    name = _ENV[param.name]
    if param.name == "device":
        spec = value or os.environ.get(name)
        if spec and spec.strip().lower() != "auto":
            devices.resolve(spec)  # no such GPU, a typo: one line, before anything is written
    if param.name == "cpu_runtime" and (value or environment.read(name)) == "openvino":
        openvino_runtime.require()  # not installed: one line, before anything is written
    if value is None:
        return
    before = os.environ.get(name)
    os.environ[name] = str(value)
    ctx.call_on_close(lambda: os.environ.pop(name, None) if before is None else os.environ.__setitem__(name, before))


def execution_flags(fn):
    """Decorator: ``--device``, ``--batch-tokens`` and ``--cpu-runtime`` (:func:`execution_flag`), not passed to
    the command."""
    for opts, kwargs in reversed(_EXECUTION_FLAGS):
        fn = click.option(*opts, expose_value=False, callback=execution_flag, **kwargs)(fn)
    return fn


def log_flag(ctx: click.Context, param: click.Parameter, value) -> None:
    """A -q/-v/--debug given after a command's name: added to the flags seen so far, logging set again."""
    state = ctx.meta.setdefault(LOG_STATE, {"debug": False, "verbose": 0, "quiet": False})
    if not value:
        return
    if param.name == "verbose":
        state["verbose"] += value
    else:
        state[param.name] = True
    root = ctx.find_root()
    if isinstance(root.obj, dict):
        root.obj["debug"] = state["debug"]
    setup = ctx.meta.get(SETUP_LOGGING)
    if setup is not None:
        setup(state["verbose"], state["quiet"])


class BenchGroup(click.Group):
    """A group whose every command (and sub-group) also takes -q/-v/--debug after its name, and whose
    commands that run models (:data:`DEVICE_COMMANDS`) take --device, --batch-tokens and --cpu-runtime."""

    group_class = type  # sub-groups (train, sweep) are BenchGroups too

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        have = {o for p in cmd.params for o in p.opts}
        for opts, kwargs in LOG_FLAGS:
            if not have & set(opts):
                cmd.params.append(click.Option(opts, expose_value=False, callback=log_flag, **kwargs))
        if (self.name, name or cmd.name) in DEVICE_COMMANDS and "--device" not in have:
            for opts, kwargs in _EXECUTION_FLAGS:
                cmd.params.append(click.Option(opts, expose_value=False, callback=execution_flag, **kwargs))
        super().add_command(cmd, name)


def option_flags(exclude: tuple[str, ...] = (), aliases: dict | None = None):
    """Decorator: a flag for each run option (:class:`RunOptions`' declarations, less ``exclude``):
    ``rerank_depth`` is ``--rerank-depth N``, with the declared help, metavar, choices and default, passed to
    the command as a keyword (None when not given) and validated by :class:`RunOptions` (a bad value is one
    line); ``aliases`` adds older flag names."""

    def wrap(fn):
        for f in reversed([f for f in fields(RunOptions) if f.name not in exclude]):
            help_text = f.metadata["help"][0].upper() + f.metadata["help"][1:] + "."
            if f.default is not None:
                help_text += f"  [default: {f.default}]"
            choices = f.metadata["choices"]
            fn = click.option(flag(f.name), *(aliases or {}).get(f.name, ()), f.name, metavar=f.metadata["metavar"],
                              type=click.Choice(choices) if choices else None, help=help_text)(fn)
        return fn

    return wrap


def systems_listing(systems) -> list[str]:
    """Each system on two lines (name and description; the flags it reads), then every option's help."""
    width = max(len(s.name) for s in systems)
    lines = []
    for s in systems:
        notes = [f"plugin: {s.plugin}"] if s.plugin else []
        if s.needs_translation:
            notes.append("needs translated queries")
        lines.append(f"{s.name.ljust(width)}  {s.description}" + (f"  [{'; '.join(notes)}]" if notes else ""))
        lines.append(f"{'':{width}}  options: {', '.join(flag(o) for o in s.reads) or 'none'}")
    names = [f.name for f in fields(RunOptions)]
    w = max(len(flag(n)) for n in names)
    return lines + ["", "options (flags of bench run):"] + [f"  {flag(n).ljust(w)}  {HELP[n]}" for n in names]


def pair_given(pair_name: str | None, pair_file: Path | None) -> str | Path:
    """The pair of ``--pair`` or ``--pair-file`` (exactly one of them)."""
    if bool(pair_name) == bool(pair_file):
        raise BenchError("give exactly one of --pair and --pair-file", "e.g. bench run --pair sw-en")
    return Path(pair_file) if pair_file else pair_name


def echo_means(pair: str, results) -> None:
    """The runs' means in the order and names of the report's tables (``MAP`` for ir_measures' ``AP``)."""
    from bench.results.report import label
    from bench.systems import place

    if not results:
        return
    results = sorted(results, key=lambda r: (place(r.system), r.system))
    measures = list(dict.fromkeys(m for r in results for m in r.means))
    width = max(len(r.system) for r in results)
    click.echo(f"\n{pair}")
    click.echo("system".ljust(width) + "".join(f"{label(m):>10}" for m in measures) + f"{'time (s)':>10}")
    for r in results:
        scores = "".join(f"{r.means[m]:>10.4f}" if m in r.means else f"{'—':>10}" for m in measures)
        click.echo(r.system.ljust(width) + scores + f"{r.wall_time_s:>10.1f}")
