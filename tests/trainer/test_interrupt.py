"""Ctrl-C or a scheduler's SIGTERM stops a driver promptly, and leaves no Ray process behind.

The driver in the child process keeps its worker busy in a long call, as a GRPO step does; a graceful
shutdown would wait for that call, so the run must take the non-graceful path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    import ray
    from verl.trainer.ray_session import run_driver

    @ray.remote(num_cpus=0)
    class Busy:
        def pid(self):
            return os.getpid()
        def work(self):
            time.sleep(600)
        def shutdown(self):
            return None

    class Driver:
        def __init__(self):
            self.worker = Busy.remote()
        def fit(self):
            pid = ray.get(self.worker.pid.remote())
            pending = self.worker.work.remote()
            print("READY", pid, flush=True)
            ray.get(pending)
        def shutdown(self, graceful=True):
            print("SHUTDOWN graceful=%s" % graceful, flush=True)
            if graceful:
                ray.get(self.worker.shutdown.remote())  # queued behind work(): waits ten minutes
            ray.kill(self.worker)

    run_driver(Driver, "", None)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_driver_stops_promptly_without_orphans(tmp_path, signum):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""}
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
        # As from a terminal: a shell that starts jobs in the background (CI) hands them SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        lines = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("READY"):
                break
        assert lines and lines[-1].startswith("READY"), "".join(lines)
        worker_pid = int(lines[-1].split()[1])
        ray_processes = psutil.Process(proc.pid).children(recursive=True)
        assert any(p.pid == worker_pid for p in ray_processes)

        sent = time.monotonic()
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=90)
        elapsed = time.monotonic() - sent
        log = "".join(lines) + out
        assert proc.returncode != 0, log
        assert "SHUTDOWN graceful=False" in log, log
        assert "interrupted" in log, log
        assert elapsed < 60, f"{elapsed:.0f} s to stop\n{log}"
        _, alive = psutil.wait_procs(ray_processes, timeout=30)
        assert not alive, f"left running: {[(p.pid, p.name()) for p in alive]}\n{log}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
