"""Metric tracking: console, a JSONL file and WandB behind one `Tracking.log(metrics, step)`.

WandB runs online when WANDB_API_KEY is set and offline otherwise (a run directory under
`<log_dir>/wandb` that `wandb sync` can upload later); `trainer.wandb_mode` forces a mode.
Secrets never reach a log: every secret value (see `verl.utils.secrets`) is scrubbed from the config,
the metric names and string values, and video keys, whatever key holds it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from verl.utils.secrets import redact, scrub

__all__ = ["BACKENDS", "Tracking", "redact"]

BACKENDS = ("console", "jsonl", "wandb")


def _scalar(value: Any) -> float | int | str | None:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    return None


class ConsoleLogger:
    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        parts = []
        for key in sorted(metrics):
            v = metrics[key]
            parts.append(f"{key}:{v:.4g}" if isinstance(v, float) else f"{key}:{v}")
        print(f"step:{step} - " + " - ".join(parts), file=self.stream, flush=True)

    def finish(self) -> None:
        pass


class JsonlLogger:
    """One JSON object per `log` call, appended and flushed, so a killed run keeps every line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in finish()

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        record = {"step": step, "time": time.time()}
        for key, value in metrics.items():
            v = _scalar(value)
            if isinstance(v, float) and not math.isfinite(v):
                v = str(v)
            if v is not None:
                record[key] = v
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def finish(self) -> None:
        self._file.close()


class WandbLogger:
    def __init__(
        self,
        project: str,
        name: str,
        config: Mapping[str, Any],
        log_dir: Path,
        mode: str = "auto",
        run_id: str | None = None,
    ) -> None:
        import wandb

        if mode == "auto":
            mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
        if mode not in ("online", "offline", "disabled"):
            raise ValueError(
                f"trainer.wandb_mode must be one of auto, online, offline, disabled; got {mode!r}"
            )
        wandb_dir = Path(log_dir)
        wandb_dir.mkdir(parents=True, exist_ok=True)
        # WandB records the command line as run metadata; the config it holds is logged (scrubbed) anyway.
        sys.argv[:] = [scrub(a) for a in sys.argv]
        self.run = wandb.init(
            project=project,
            config=redact(dict(config)),
            name=scrub(name),
            dir=str(wandb_dir),
            mode=mode,
            id=run_id,
            resume="allow" if run_id else None,
            settings=wandb.Settings(silent=True, console="off"),
        )
        self.mode = mode

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        self.run.log({k: v for k, v in metrics.items() if _scalar(v) is not None}, step=step)

    def log_video(self, key: str, path: str, step: int) -> None:
        import wandb

        self.run.log({key: wandb.Video(path, format="mp4")}, step=step)

    def finish(self) -> None:
        self.run.finish()


class Tracking:
    """Fan-out to the configured backends; unknown backend names are an error."""

    def __init__(
        self,
        project_name: str,
        experiment_name: str,
        backends: Sequence[str],
        log_dir: str | Path,
        config: Mapping[str, Any] | None = None,
        wandb_mode: str = "auto",
        run_id: str | None = None,
    ) -> None:
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown:
            raise ValueError(f"trainer.logger: unknown backend(s) {unknown}; allowed: {list(BACKENDS)}")
        self.log_dir = Path(log_dir)
        self.loggers: dict[str, Any] = {}
        if "console" in backends:
            self.loggers["console"] = ConsoleLogger()
        if "jsonl" in backends:
            self.loggers["jsonl"] = JsonlLogger(self.log_dir / "metrics.jsonl")
        if "wandb" in backends:
            self.loggers["wandb"] = WandbLogger(
                project_name, experiment_name, config or {}, self.log_dir, mode=wandb_mode, run_id=run_id
            )

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        metrics = redact(dict(metrics))
        for logger in self.loggers.values():
            logger.log(metrics, step)

    def log_video(self, key: str, path: str, step: int) -> None:
        if "wandb" in self.loggers:
            self.loggers["wandb"].log_video(scrub(key), path, step)

    def finish(self) -> None:
        for logger in self.loggers.values():
            logger.finish()
