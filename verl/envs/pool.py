"""EnvPool: persistent simulator worker processes with batched reset/step, timeouts and restarts.

Each worker is a fresh interpreter (verl.envs.worker) owning one simulator, re-used across episodes
and tasks. Requests to different workers run concurrently; `send_step` + `receive_steps` let the caller
work while a chunk runs. A worker that dies or exceeds its timeout is killed and replaced, and its
episode comes back as failed with the reason; the rest of the batch is unaffected. Workers exit with
the pool (close(), garbage collection, interpreter exit) and with the parent process if it dies.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import warnings
import weakref
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from verl.envs.base import EnvResult, ResetRequest
from verl.envs.config import EnvConfig
from verl.envs.registry import get_env_spec
from verl.envs.spec import EnvSpec, WorkerRuntime

_SHUTDOWN_GRACE_S = 10.0
THREAD_VARS = ("LP_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# A worker in a numpy-1 venv (RoboTwin) pickles arrays under `numpy.core` names, which numpy 2 still
# loads but warns about on first use.
warnings.filterwarnings("ignore", message=r"numpy\.core\.\w+ is deprecated", category=DeprecationWarning)


@dataclass
class _Worker:
    proc: subprocess.Popen
    conn: Connection
    # (suite, task_id) of the simulator the worker holds, as far as the pool knows.
    task: tuple[str, int] | None = None
    # Bookkeeping of the worker's current episode (EnvResult.info), attached to failure reports.
    info: dict = field(default_factory=dict)


def _import_root(module: str) -> str:
    """The directory a module's top-level package is imported from."""
    spec = importlib.util.find_spec(module.split(".")[0])
    locations = list(spec.submodule_search_locations or []) if spec else []
    return str(Path(locations[0] if locations else spec.origin).parent) if spec else ""


def egl_device_id(environ: dict[str, str]) -> str | None:
    """The EGL device the simulators of this process render on: MUJOCO_EGL_DEVICE_ID when set, else
    the first GPU in CUDA_VISIBLE_DEVICES (Ray sets it to the GPU of the rank that owns the pool), so
    the simulators of the rank on GPU k render on GPU k. None (the renderer's default) without GPUs.

    EGL numbers devices by their physical index, as CUDA_VISIBLE_DEVICES does under
    CUDA_DEVICE_ORDER=PCI_BUS_ID; a UUID entry (GPU-...) is left to the renderer's default.
    """
    if environ.get("MUJOCO_EGL_DEVICE_ID"):
        return environ["MUJOCO_EGL_DEVICE_ID"]
    first = environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return first if first.isdigit() else None


def worker_threads(num_workers: int) -> int:
    """Threads per simulator process: this machine's cores shared among the pool's processes."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, num_workers))


def _start_worker(cfg: EnvConfig, module: str, runtime: WorkerRuntime, threads: int = 1) -> _Worker:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(os.environ)
    env.update(runtime.env)
    # The worker imports the framework and the simulator's registering module from where this
    # process does, whatever its working directory.
    roots = dict.fromkeys(r for r in (_import_root("verl"), _import_root(module)) if r)
    env["PYTHONPATH"] = os.pathsep.join([*roots, *filter(None, [env.get("PYTHONPATH", "")])])
    env.setdefault("MUJOCO_GL", "egl")
    env.setdefault("PYOPENGL_PLATFORM", env["MUJOCO_GL"])
    device = egl_device_id(env)
    if device is not None:
        env["MUJOCO_EGL_DEVICE_ID"] = device
    # One malloc arena: the renderer's threads otherwise keep ~50 MiB of freed heap each.
    env.setdefault("MALLOC_ARENA_MAX", "1")
    # Threads for software rendering (Mesa llvmpipe) and numerical libraries: the cores divided among
    # the pool's processes, which are the parallelism. With their defaults (a thread per core each),
    # several simulators per core contend for the cores.
    for name in THREAD_VARS:
        env.setdefault(name, str(threads))
    try:
        proc = subprocess.Popen(
            [
                runtime.python or sys.executable,
                "-m",
                "verl.envs.worker",
                str(child.fileno()),
                str(os.getpid()),
            ],
            pass_fds=(child.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=2,  # simulator chatter goes to stderr; stdout stays clean for the caller
        )
    finally:
        child.close()
    conn = Connection(parent.detach())
    conn.send(("config", cfg, module))
    return _Worker(proc=proc, conn=conn)


def _kill(worker: _Worker) -> int | None:
    """SIGKILL and reap a worker; returns its exit code."""
    if worker.proc.poll() is None:
        worker.proc.send_signal(signal.SIGKILL)
    try:
        code = worker.proc.wait(timeout=_SHUTDOWN_GRACE_S)
    except subprocess.TimeoutExpired:
        code = None
    worker.conn.close()
    return code


def _shutdown(workers: list[_Worker]) -> None:
    """Ask every worker to exit, then kill the ones that do not within the grace period."""
    for w in workers:
        try:
            w.conn.send(("close",))
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + _SHUTDOWN_GRACE_S
    for w in workers:
        try:
            w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _kill(w)
    workers.clear()


class EnvPool:
    """`num_workers` simulator processes serving batched resets and action-chunk steps.

    Requests are (worker index, payload) pairs; each worker appears at most once per call. Results
    come back in request order. Malformed requests (unknown suite, task or init state out of range,
    wrong action shape, unknown worker) raise ValueError before anything is sent; non-finite actions,
    simulator errors, crashes and timeouts end that episode as failed.
    """

    def __init__(self, cfg: EnvConfig, num_workers: int | None = None):
        cfg.validate()
        self.cfg = cfg
        self.spec: EnvSpec = get_env_spec(cfg.name)
        n = cfg.num_workers if num_workers is None else num_workers
        if n < 1:
            raise ValueError(f"num_workers={n}; allowed: an integer >= 1")
        self.runtime = self.spec.worker_runtime(cfg)
        if self.runtime.python is not None and not os.access(self.runtime.python, os.X_OK):
            raise ValueError(
                f"the {cfg.name} simulator workers' interpreter {self.runtime.python!r} is not an executable "
                "(env.worker_python, or the simulator's own venv: see its set-up script)"
            )
        self.threads = worker_threads(n)
        self._workers: list[_Worker] = [
            _start_worker(cfg, self.spec.module, self.runtime, self.threads) for _ in range(n)
        ]
        self.restarts = 0
        # Requests sent and not yet answered: worker -> (deadline, "reset" | "step", timeout in s).
        self._inflight: dict[int, tuple[float, str, float]] = {}
        # Answers (or failure reports) received and not yet handed out.
        self._answered: dict[int, EnvResult] = {}
        # Runs on close(), on garbage collection and at interpreter exit, whichever comes first.
        self._finalizer = weakref.finalize(self, _shutdown, self._workers)

    # ----------------------------------------------------------------------------------------- public
    @property
    def num_workers(self) -> int:
        return len(self._workers)

    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    def loaded_tasks(self) -> list[tuple[str, int] | None]:
        """Per worker, the (suite, task_id) its simulator holds: resets to the same task are cheap."""
        return [w.task for w in self._workers]

    def reset(self, requests: list[tuple[int, ResetRequest]]) -> list[EnvResult]:
        """Start one episode per (worker index, request); returns the first observations."""
        self._check_workers([i for i, _ in requests])
        for _, request in requests:
            self.spec.check_request(request)
        if self.cfg.fresh_simulator_per_episode:
            self._replace([i for i, _ in requests])
        results = self._exchange([(i, ("reset", r)) for i, r in requests], self.cfg.reset_timeout_s, "reset")
        for (i, request), result in zip(requests, results):
            self._workers[i].task = None if result.failed else (request.suite, request.task_id)
        return results

    def step(self, requests: list[tuple[int, np.ndarray]]) -> list[EnvResult]:
        """Execute one action chunk [k, action_dim] (policy convention) per (worker index, chunk)."""
        self.send_step(requests)
        return self.receive_steps([i for i, _ in requests])

    def send_step(self, requests: list[tuple[int, np.ndarray]]) -> None:
        """Start the chunks of `step` without waiting; `receive_steps` returns their results. Meanwhile the
        caller can compute the next actions of other workers (pipelined rollout)."""
        self._check_workers([i for i, _ in requests])
        messages = []
        for i, actions in requests:
            actions = np.asarray(actions)
            if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] != self.spec.action_dim:
                raise ValueError(
                    f"actions for worker {i} have shape {list(actions.shape)}; "
                    f"allowed: [k >= 1, {self.spec.action_dim}]"
                )
            messages.append((i, ("step", actions)))
        self._send(messages, self.cfg.step_timeout_s, "step")

    def receive_steps(self, indices: list[int]) -> list[EnvResult]:
        """Results of the chunks `send_step` started on `indices`, in that order (waits for them)."""
        self._check_workers(indices)
        return self._receive(indices)

    def receive_ready(self, indices: list[int], block: bool = True) -> list[tuple[int, EnvResult]]:
        """(worker, result) of the chunks in flight on `indices` that have finished, in `indices` order;
        with `block`, waits until at least one has (a late or dead worker is restarted and reported as
        failed, as in `receive_steps`). The others stay in flight."""
        self._check_workers(indices)
        self._await(indices, block=block, every=False)
        return [(i, self._answered.pop(i)) for i in indices if i in self._answered]

    def debug_hang_next_step(self, worker: int, seconds: float) -> None:
        """TEST ONLY: make worker `worker` sleep `seconds` before its next step, to exercise timeouts."""
        self._check_workers([worker])
        self._workers[worker].conn.send(("debug_hang_next_step", float(seconds)))

    def close(self) -> None:
        """Stop every worker (no orphans, no zombies). Idempotent."""
        self._finalizer()

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------- internals
    def _check_workers(self, indices: list[int]) -> None:
        if not self._finalizer.alive:
            raise RuntimeError("the EnvPool is closed")
        for i in indices:
            if not isinstance(i, (int, np.integer)) or not 0 <= i < len(self._workers):
                raise ValueError(f"worker index {i!r}; allowed: 0..{len(self._workers) - 1}")
        if len(set(indices)) != len(indices):
            raise ValueError(f"worker indices {indices} repeat; each worker takes one request per call")

    def _replace(self, indices: list[int]) -> None:
        """Swap workers `indices` for new processes (`env.fresh_simulator_per_episode`): the new ones
        start together, then the old ones are asked to exit (and killed if they do not)."""
        old = [self._workers[i] for i in indices]
        for i in indices:
            self._workers[i] = _start_worker(self.cfg, self.spec.module, self.runtime, self.threads)
        _shutdown(old)

    def _restart(self, i: int, why: str) -> EnvResult:
        """Replace worker i (killing it if needed) and report its episode as failed."""
        info = self._workers[i].info
        code = _kill(self._workers[i])
        self._workers[i] = _start_worker(self.cfg, self.spec.module, self.runtime, self.threads)
        self.restarts += 1
        detail = f" (exit code {code})" if code is not None else ""
        return EnvResult.failure(f"worker {i} {why}{detail}; it was restarted", info=info)

    def _exchange(self, messages: list[tuple[int, tuple]], timeout_s: float, what: str) -> list[EnvResult]:
        self._send(messages, timeout_s, what)
        return self._receive([i for i, _ in messages])

    def _send(self, messages: list[tuple[int, tuple]], timeout_s: float, what: str) -> None:
        """Send one message per worker; the answers are collected by `_receive`."""
        for i, _ in messages:
            if i in self._inflight or i in self._answered:
                raise RuntimeError(f"worker {i}: the result of its last request was not collected")
        for i, message in messages:
            if message[0] == "reset":
                request = message[1]
                self._workers[i].info = {
                    "suite": request.suite,
                    "task_id": request.task_id,
                    "init_state_id": request.init_state_id,
                }
            payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
            deadline = time.monotonic() + timeout_s
            try:
                self._workers[i].conn.send_bytes(payload)
                self._inflight[i] = (deadline, what, timeout_s)
            except OSError:
                self._answered[i] = self._restart(i, f"had died before {what}")

    def _receive(self, indices: list[int]) -> list[EnvResult]:
        """Wait for the answers of `indices` (each sent by `_send`); a late or dead worker is restarted."""
        self._await(indices, block=True, every=True)
        return [self._answered.pop(i) for i in indices]

    def _await(self, indices: list[int], block: bool, every: bool) -> None:
        """Move the answers of `indices` that arrive into `_answered`: all of them (`every`), at least
        one (`block`), or those already there (neither). Late workers are restarted on the way."""
        for i in indices:
            if i not in self._inflight and i not in self._answered:
                raise RuntimeError(f"worker {i} has no request in flight")
        waiting = {self._workers[i].conn: i for i in indices if i in self._inflight}
        while waiting:
            answered = any(i in self._answered for i in indices)
            deadline = min(self._inflight[i][0] for i in waiting.values())
            timeout = max(0.0, deadline - time.monotonic())
            if not every and (answered or not block):
                timeout = 0.0
            ready = wait(list(waiting), timeout=timeout)
            for conn in ready:
                i = waiting.pop(conn)
                _, what, _ = self._inflight.pop(i)
                try:
                    self._answered[i] = conn.recv()
                    self._workers[i].info = self._answered[i].info or self._workers[i].info
                except (EOFError, OSError):
                    self._answered[i] = self._restart(i, f"died during {what}")
            now = time.monotonic()
            for conn, i in list(waiting.items()):
                if self._inflight[i][0] <= now:
                    del waiting[conn]
                    _, what, timeout_s = self._inflight.pop(i)
                    self._answered[i] = self._restart(i, f"timed out after {timeout_s:g} s during {what}")
            if not every and (timeout == 0.0 or any(i in self._answered for i in indices)):
                return
