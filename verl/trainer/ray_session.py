"""Run a driver inside a Ray session: the runtime env from align.json, a private local instance unless
an address is given, and clean shutdown of the driver and of the Ray instance it started.

Ctrl-C (SIGINT) and SIGTERM (a scheduler's cancel) stop a run promptly: the workers are killed without
waiting for the call they are busy with (their simulator processes die with them), the Ray instance is
shut down, and the newest complete checkpoint is what a resumed run starts from.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verl.utils.secrets import driver_only, install_log_scrubber, register_secrets, secrets_in

logger = logging.getLogger(__name__)

# Variables every worker needs whatever align.json says; align.json's values take precedence.
# Ray's authentication is left as Ray sets it (token auth from Ray 2.59): CPU scripts and tests that
# want it off set RAY_AUTH_MODE=disabled themselves.
DEFAULT_ENV_VARS = {"TOKENIZERS_PARALLELISM": "true", "NCCL_DEBUG": "WARN"}


def load_runtime_env(path: str) -> dict[str, Any]:
    """Ray runtime_env from `trainer.runtime_env` (align.json), with the defaults and the caller's
    rendering/WandB variables added. Values are never printed: they may hold API keys.
    `split_driver_only` takes out what must not reach the workers."""
    runtime_env: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(
                f"trainer.runtime_env={path!r}: no such file (expected a JSON runtime env)"
            )
        try:
            runtime_env = json.loads(p.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(
                f"trainer.runtime_env={path!r} is not valid JSON: {err.msg} at line {err.lineno}"
            ) from None
        if not isinstance(runtime_env, dict):
            raise ValueError(f"trainer.runtime_env={path!r} must hold a JSON object")
    env_vars = dict(DEFAULT_ENV_VARS)
    for key in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "WANDB_API_KEY", "WANDB_MODE", "HF_HOME"):
        if os.environ.get(key):
            env_vars[key] = os.environ[key]
    env_vars.update({k: str(v) for k, v in runtime_env.get("env_vars", {}).items()})
    # A placeholder key in align.json must not switch WandB online with a bogus key.
    if env_vars.get("WANDB_API_KEY", "").startswith("YOUR"):
        env_vars.pop("WANDB_API_KEY")
    runtime_env["env_vars"] = env_vars
    return runtime_env


def split_driver_only(runtime_env: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(the runtime env for Ray and its workers, the variables only the driver gets: the WandB key and
    every secret-named variable)."""
    env_vars = dict(runtime_env.get("env_vars", {}))
    kept = {k: env_vars.pop(k) for k in driver_only(list(env_vars))}
    return {**runtime_env, "env_vars": env_vars}, kept


@contextlib.contextmanager
def _without_env(keys: list[str]):
    """Hide `keys` from os.environ: a local Ray instance started meanwhile (and every worker and
    simulator it spawns) inherits the driver's environment."""
    saved = {k: os.environ.pop(k) for k in keys if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class WorkerGroupOwner:
    """A driver that owns a Ray worker group (`self.wg`), its resource pool, a metrics tracker and a
    progress counter the workers report to (`self.progress`, None without one)."""

    wg: Any
    pool: Any
    tracker: Any
    progress: Any = None
    show_progress: bool = True

    def start_progress(self, enabled: bool) -> None:
        """Create the progress counter and hand it to every worker."""
        from verl.utils.progress import start_counter

        self.show_progress = enabled
        self.progress = start_counter()
        self.wg.call("set_progress_counter", self.progress)

    def calls_with_progress(
        self, method: str, calls: list[tuple], stage: Any, kind: str, dispatch_mode: Any, reset: bool = True
    ) -> list[Any]:
        """`self.wg.call(method, *args)` for each `args` of `calls`, one after another, while `stage`
        (a `verl.utils.progress.Stage`) shows the `kind` items the workers finish (counted from zero
        unless `reset` is False)."""
        import ray

        from verl.utils.progress import wait_with_progress

        if self.progress is None:
            return [self.wg.call(method, *args, dispatch_mode=dispatch_mode) for args in calls]
        if reset:
            ray.get(self.progress.reset.remote(kind))
        results = []
        for args in calls:
            refs = self.wg.call(method, *args, dispatch_mode=dispatch_mode, blocking=False)
            wait_with_progress(refs, self.progress, kind, stage)
            results.append(self.wg.wait(refs, dispatch_mode))
        return results

    def save_checkpoint(self, out_dir: Any, step: int, trainer_state: dict, max_to_keep: int | None) -> Any:
        """Every worker writes its part, then `trainer_state.json`; the directory becomes complete
        (visible to a resume) only at the end. Returns the checkpoint directory."""
        from verl.utils import checkpoint as ckpt
        from verl.utils.progress import Stage

        stage = Stage(f"checkpoint step {step}", None, "", self.show_progress)
        path = ckpt.begin_checkpoint(out_dir, step)
        self.wg.call("save_checkpoint", str(path))
        ckpt.atomic_write_json(path / "trainer_state.json", trainer_state)
        final = ckpt.commit_checkpoint(out_dir, step, max_to_keep)
        stage.close(f"written to {final}")
        return final

    def shutdown(self, graceful: bool = True) -> None:
        """Close the workers' simulator pools, then kill the workers; `graceful=False` (after an
        interruption) skips the first step, which would wait for the call the workers are busy with."""
        try:
            if graceful:
                self.wg.call("shutdown")
        finally:
            self.wg.shutdown()
            self.pool.remove()
            self.tracker.finish()
            if self.progress is not None:
                import ray

                ray.kill(self.progress)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def run_driver(make_driver: Callable[[], Any], runtime_env_path: str, ray_address: str | None) -> Any:
    """`make_driver()` inside a Ray session, then `driver.fit()`; `driver.shutdown()` always runs.

    On an interruption the driver is shut down with `graceful=False`: it must not wait on its workers.
    """
    import ray

    from verl.single_controller.ray import WorkerCallTimeout

    runtime_env, driver_vars = split_driver_only(load_runtime_env(runtime_env_path))
    register_secrets(secrets_in(runtime_env["env_vars"]) | secrets_in(driver_vars))
    install_log_scrubber()
    # The driver process needs the runtime env's variables too (rendering backend).
    for key, value in runtime_env["env_vars"].items():
        os.environ.setdefault(key, value)
    started_ray = False
    if not ray.is_initialized():
        # Without an explicit address start a private local instance; never attach to whatever
        # cluster another job left running on this machine.
        address = ray_address or os.environ.get("RAY_ADDRESS") or "local"
        with _without_env(driver_only(set(os.environ) | set(driver_vars))):
            ray.init(address=address, runtime_env=runtime_env, include_dashboard=False, log_to_driver=True)
        started_ray = True
    # Only now: the driver's tracker needs the WandB key, its Ray workers do not.
    os.environ.update(driver_vars)
    # After ray.init, which installs its own SIGTERM handler (exit without stopping the workers first).
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    try:
        driver = make_driver()
        interrupted = False
        try:
            return driver.fit()
        except WorkerCallTimeout as err:
            # A wedged worker would block a graceful shutdown (its next call queues behind the stuck one).
            interrupted = True
            logger.error("%s", err)
            raise
        except KeyboardInterrupt as err:
            interrupted = True
            logger.warning(
                "interrupted (%s): stopping the workers without waiting for their current call; a resumed "
                "run starts from the newest complete checkpoint",
                err or "SIGINT",
            )
            raise
        finally:
            driver.shutdown(graceful=not interrupted)
    finally:
        if started_ray:
            ray.shutdown()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
