"""Env worker process: owns one simulator and serves reset/step messages from an EnvPool.

Started by the pool as a fresh interpreter (`python -m verl.envs.worker <fd> <parent pid>`), so it
never imports the parent's main module (and with it torch). It dies with its parent: the kernel
sends SIGKILL when the parent exits (PR_SET_PDEATHSIG), and the loop also exits on a closed socket
or a changed parent pid.

Messages (pickled tuples over a socket): ("config", EnvConfig, module registering the simulator),
("reset", ResetRequest),
("step", ndarray [k, A]), ("debug_hang_next_step", seconds), ("close",). Reset and step answer with
one EnvResult; the others do not answer.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection

from verl.envs.base import EnvResult

_PR_SET_PDEATHSIG = 1
_PARENT_POLL_S = 1.0


def _die_with_parent(parent_pid: int) -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux/glibc: the parent-pid poll still applies
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _numpy_pickle_compat() -> None:
    """Let numpy 1.x unpickle arrays pickled by numpy 2 (a pool in the project's venv sending to a worker
    in a simulator's numpy-1 venv): numpy 2 pickles name `numpy._core.*`, numpy 1 calls it `numpy.core`.
    The other direction needs nothing: numpy 2 still resolves `numpy.core` names."""
    import importlib

    import numpy

    if int(numpy.__version__.split(".")[0]) >= 2 or "numpy._core" in sys.modules:
        return
    core = importlib.import_module("numpy.core")
    sys.modules["numpy._core"] = core
    for name in ("multiarray", "numeric", "_multiarray_umath", "umath", "fromnumeric", "records"):
        try:
            sys.modules[f"numpy._core.{name}"] = importlib.import_module(f"numpy.core.{name}")
        except ImportError:
            pass


def _error(prefix: str, exc: BaseException) -> str:
    return f"{prefix}: {type(exc).__name__}: {exc}"


def serve(conn: Connection, parent_pid: int) -> None:
    """Answer messages until "close", a closed socket, or the parent's death."""
    import importlib

    from verl.envs.registry import get_env_spec

    kind, cfg, module = conn.recv()
    assert kind == "config", kind
    importlib.import_module(module)  # registers simulators defined outside verl/
    spec = get_env_spec(cfg.name)
    env = spec.make(cfg)
    hang_s = 0.0
    try:
        while True:
            if not conn.poll(_PARENT_POLL_S):
                if os.getppid() != parent_pid:
                    return
                continue
            msg = conn.recv()
            kind = msg[0]
            if kind == "close":
                return
            if kind == "debug_hang_next_step":
                hang_s = float(msg[1])
                continue
            if kind == "reset":
                request = msg[1]
                try:
                    spec.check_request(request)
                except ValueError as exc:
                    result = EnvResult.failure(f"bad reset request: {exc}")
                else:
                    try:
                        result = env.reset(request)
                    except Exception as exc:  # a simulator in an unknown state is rebuilt on the next reset
                        traceback.print_exc(file=sys.stderr)
                        env.close()
                        result = EnvResult.failure(_error("reset failed", exc))
            elif kind == "step":
                if hang_s > 0:
                    time.sleep(hang_s)
                    hang_s = 0.0
                try:
                    result = env.step_chunk(msg[1])
                except Exception as exc:
                    traceback.print_exc(file=sys.stderr)
                    env.close()
                    result = EnvResult.failure(_error("simulator error during step", exc))
            else:
                result = EnvResult.failure(f"unknown message {kind!r}; allowed: reset, step, close")
            conn.send(result)
    except (EOFError, OSError):  # the parent closed its end
        return
    finally:
        env.close()


def main() -> None:
    fd, parent_pid = int(sys.argv[1]), int(sys.argv[2])
    _die_with_parent(parent_pid)
    # The parent handles Ctrl-C and shuts workers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _numpy_pickle_compat()
    conn = Connection(fd)
    try:
        serve(conn, parent_pid)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
