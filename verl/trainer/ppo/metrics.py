"""Metrics computed on the driver from rollout batches."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import psutil

from verl.protocol import DataProto


def success_metrics(out: DataProto, prefix: str) -> dict[str, float]:
    """Success rate overall (`<prefix>/all`), per suite (`<prefix>/<suite>`) and per task
    (`<prefix>/<suite>/task_<id>`), plus the episode count."""
    success = out.batch["success"].numpy().astype(np.float64)
    metrics = {f"{prefix.split('/')[0]}/episodes": float(len(success))}
    metrics.update(
        success_rates(success, out.non_tensor_batch["suite"], out.non_tensor_batch["task_id"], prefix)
    )
    errors = out.non_tensor_batch.get("env_error")
    if errors is not None:
        metrics[f"{prefix.split('/')[0]}/env_errors"] = float(np.sum(errors != ""))
    return metrics


def success_rates(
    success: np.ndarray, suites: np.ndarray, tasks: np.ndarray, prefix: str
) -> dict[str, float]:
    """`<prefix>/all`, `<prefix>/<suite>` and `<prefix>/<suite>/task_<id>`: mean success of each group."""
    success = np.asarray(success, dtype=np.float64)
    metrics = {f"{prefix}/all": float(success.mean()) if len(success) else 0.0}
    by_suite: dict[str, list[float]] = defaultdict(list)
    by_task: dict[tuple[str, int], list[float]] = defaultdict(list)
    for s, suite, task in zip(success, suites, tasks):
        by_suite[str(suite)].append(s)
        by_task[(str(suite), int(task))].append(s)
    for suite, values in by_suite.items():
        metrics[f"{prefix}/{suite}"] = float(np.mean(values))
    for (suite, task), values in by_task.items():
        metrics[f"{prefix}/{suite}/task_{task}"] = float(np.mean(values))
    return metrics


def trajectory_metrics(batch: DataProto, step_seconds: float) -> dict[str, float]:
    """Episode lengths, throughput, stored bytes per decision step and host memory."""
    finish = batch.batch["finish_step"].numpy().astype(np.float64)
    decisions = batch.batch["num_decision_steps"].numpy().astype(np.float64)
    return {
        "response_length/mean": float(finish.mean()),
        "response_length/max": float(finish.max()),
        "response_length/min": float(finish.min()),
        "rollout/decision_steps_mean": float(decisions.mean()),
        "rollout/bytes_per_decision_step": float(batch.meta_info.get("bytes_per_decision_step", 0.0)),
        "rollout/image_bytes_per_decision_step": float(
            batch.meta_info.get("image_bytes_per_decision_step", 0.0)
        ),
        "perf/trajectories_per_s": len(batch) / step_seconds if step_seconds else 0.0,
        # What the driver holds per trained trajectory (object refs count as pointers).
        "perf/driver_bytes_per_trajectory": batch.nbytes() / len(batch),
        "perf/driver_rss_gib": psutil.Process().memory_info().rss / 2**30,
    }
