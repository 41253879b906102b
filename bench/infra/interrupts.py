"""Stops: SIGTERM and SIGINT end a bench command the same way, whatever it is doing, and never hang.

:func:`install` (called by the CLI's ``main``) makes the first SIGTERM or SIGINT raise
:class:`KeyboardInterrupt` in the main thread, so the stack unwinds and every artifact being built
removes its temporary directory; the CLI then prints one line and exits 128 + the signal (130, 143).
The Java VM that pyserini starts would otherwise take SIGTERM and SIGINT for itself and exit at once
(bench starts it with ``-Xrs``, :mod:`bench.methods.retrieve.lucene`, and takes the signals back).

The main thread sees a signal only between Python bytecodes; inside a long native call (Lucene
indexing, a JNI call, a torch kernel) the interrupt waits for the call to return. A watchdog therefore
starts with the first signal, woken by the signal's C handler through a wakeup fd (not by the main
thread): if the command has not finished within :data:`GRACE_S` seconds, or at a second signal, it
removes this process's temporary files (:func:`bench.infra.tempfiles.remove_live_temps`), prints the one
line and ends the process with :func:`os._exit`. As a last resort, a timer that needs no Python
thread at all (:func:`faulthandler.dump_traceback_later`) ends the process 10 s after that.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import socket
import sys
import threading

from bench.infra import library_output
from bench.infra.environment import number
from bench.infra.tempfiles import remove_live_temps

SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACE_S = 20.0  # BENCH_STOP_GRACE_S overrides (read by install)
LAST_RESORT_S = 10.0
MESSAGE = "interrupted ({name}): finished runs are kept, unfinished ones left nothing behind"

_lock = threading.RLock()
_state: dict = {"signal": None, "handled": 0, "woken": 0, "timer": None, "said": False, "previous": None,
                "settled": False}
_wakeup: dict = {"sockets": None, "thread": None}
_devnull = None


def exit_code(signum: int | None) -> int:
    return 128 + signum if signum else 130


def line(signum: int | None) -> str:
    name = signal.Signals(signum).name if signum else "SIGINT"
    return MESSAGE.format(name=name)


def received() -> int | None:
    """The signal that is stopping this process, if any."""
    return _state["signal"]


def raise_if_stopping() -> None:
    """Raise :class:`KeyboardInterrupt` again once a stop was asked for: a library may have swallowed
    the first one (imports are known to turn it into an ImportError that is then caught), and nothing
    may start or be committed after a stop (:func:`bench.infra.store.atomic_dir` asks before both)."""
    if _state["signal"] is not None:
        raise KeyboardInterrupt(f"signal {_state['signal']} (stopping)")


def install(grace_s: float | None = None) -> None:
    """In the main thread: the first SIGTERM or SIGINT interrupts, the watchdog bounds the stop."""
    global GRACE_S
    GRACE_S = grace_s if grace_s is not None else number("BENCH_STOP_GRACE_S", GRACE_S)
    with _lock:
        _cancel_timer()
        _state.update(signal=None, handled=0, woken=0, said=False, settled=False)
        if _state["previous"] is None:
            _state["previous"] = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, _handler)
    _start_wakeup_thread()


def uninstall() -> None:
    """Restore the handlers :func:`install` replaced and forget any stop (tests, embedding callers)."""
    with _lock:
        _cancel_timer()
        faulthandler.cancel_dump_traceback_later()
        previous = _state["previous"] or {}
        _state.update(signal=None, handled=0, woken=0, said=False, previous=None, settled=False)
    for sig, handler in previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    sockets = _wakeup["sockets"]
    if sockets is not None and threading.current_thread() is threading.main_thread():
        old = signal.set_wakeup_fd(-1)
        if old not in (-1, sockets[1].fileno()):  # someone else's: put it back
            signal.set_wakeup_fd(old)


def settle() -> None:
    """The command is over: a signal from now on (while the interpreter shuts down) ends the process at
    once, with the one line and 128 + the signal, instead of interrupting the shutdown."""
    with _lock:
        _state["settled"] = True


def reinstall_after_foreign_handlers() -> None:
    """Take SIGTERM and SIGINT back after native code (a JVM) installed its own handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in SIGNALS:
        handler = signal.getsignal(sig)
        if callable(handler):
            signal.signal(sig, handler)  # sigaction again: the C-level handler is Python's once more


def _handler(signum, frame) -> None:
    with _lock:
        _state["handled"] += 1
        _arm(signum)  # the watchdog thread may have armed it already: it is woken first
        first = _state["handled"] == 1
        again = _state["handled"] > 1 or _state["settled"]
    if again:
        finish_now(f"{signal.Signals(signum).name} {'after the command finished' if _state['settled'] else 'again'}")
    if first:
        raise KeyboardInterrupt(f"signal {signum}")


def _arm(signum: int) -> bool:
    """Record the stop and start the watchdog (once); True for the first signal."""
    if _state["signal"] is not None:
        return False
    _state["signal"] = signum
    timer = threading.Timer(GRACE_S, finish_now, args=(f"unwinding took more than {GRACE_S:g} s",))
    timer.daemon = True
    try:
        timer.start()
        _state["timer"] = timer
    except RuntimeError:  # no new thread at interpreter shutdown: the last resort below still holds
        pass
    global _devnull
    if _devnull is None:
        _devnull = open(os.devnull, "w")
    faulthandler.dump_traceback_later(GRACE_S + LAST_RESORT_S, exit=True, file=_devnull)
    return True


def _cancel_timer() -> None:
    timer = _state.get("timer")
    if timer is not None:
        timer.cancel()
        _state["timer"] = None


def _start_wakeup_thread() -> None:
    if _wakeup["sockets"] is None:
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        _wakeup["sockets"] = (reader, writer)
    try:
        signal.set_wakeup_fd(_wakeup["sockets"][1].fileno(), warn_on_full_buffer=False)
    except ValueError:  # not the main thread: the handler alone arms the watchdog
        return
    if _wakeup["thread"] is None:
        thread = threading.Thread(target=_watch, name="bench-stop-watchdog", daemon=True)
        _wakeup["thread"] = thread
        thread.start()


def _watch() -> None:
    """Woken by the C signal handler for every delivered signal, whatever the main thread is doing."""
    reader = _wakeup["sockets"][0]
    while True:
        try:
            data = reader.recv(64)
        except OSError:
            return
        for signum in data:
            if signum not in SIGNALS:
                continue
            with _lock:
                if _state["previous"] is None:  # not installed (any more)
                    continue
                _state["woken"] += 1
                _arm(signum)
                again = _state["woken"] > 1 or _state["settled"]
            if again:
                when = "after the command finished" if _state["settled"] else "again"
                finish_now(f"{signal.Signals(signum).name} {when}")


def say(signum: int | None, raw: bool = False) -> None:
    """Print the stop's one line on stderr, once per stop (``raw``: straight to fd 2, for the watchdog,
    which must not wait for a lock on ``sys.stderr`` that the main thread may hold)."""
    with _lock:
        if _state["said"]:
            return
        _state["said"] = True
    text = line(signum) + "\n"
    try:
        if raw:
            os.write(library_output.terminal_stderr(), text.encode())  # not into a library's captured output
        else:
            sys.stderr.write(text)
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def exit_process(code: int, flush: bool = True) -> None:
    """End the process now, without the interpreter's finalisation (which can hang or crash once a
    JVM runs threads in it): flush what was written (unless the caller may not wait for the locks
    that takes), then :func:`os._exit`."""
    if flush:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    os._exit(code)


def exit_program(code, entry) -> None:
    """End a finished command with ``code`` (as :class:`SystemExit` takes it). As the program itself
    (``entry`` is ``__main__.main``: the console script), skip the interpreter's shutdown, which takes
    seconds beside a JVM and restores the default signal handlers on the way (a late SIGTERM would
    then kill it silently); called in-process, raise :class:`SystemExit` as usual (or return on 0)."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    if getattr(sys.modules.get("__main__"), "main", None) is entry:
        exit_process(code)
    if code:
        sys.exit(code)


def exit_stopped() -> None:
    """End a stopped command: its one line and 128 + the signal (130 for a KeyboardInterrupt that no
    signal raised, e.g. in-process callers, which get SystemExit instead of :func:`os._exit`)."""
    signum = received()
    remove_live_temps()  # any whose own cleanup was cut short
    if signum is None:
        say(None)
        sys.exit(130)
    say(signum)
    exit_process(exit_code(signum))


def finish_now(reason: str) -> None:
    """The watchdog: remove this process's temporary files, print the one line and end the process."""
    signum = _state["signal"] or signal.SIGINT
    logging.getLogger(__name__).debug("stopping without unwinding: %s", reason)
    remove_live_temps()
    say(signum, raw=True)
    exit_process(exit_code(signum), flush=False)
