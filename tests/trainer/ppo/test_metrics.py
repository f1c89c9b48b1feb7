"""Success-rate metrics: overall, per suite and per task, as logged for training and validation."""

from __future__ import annotations

import numpy as np
import pytest

from verl.trainer.ppo.metrics import success_rates


def test_success_rates_by_suite_and_task():
    success = np.array([1, 0, 0, 0, 1, 1, 0, 1])
    suites = np.array(["libero_object"] * 6 + ["libero_10"] * 2, dtype=object)
    tasks = np.array([1, 1, 2, 2, 2, 2, 0, 0], dtype=object)
    m = success_rates(success, suites, tasks, "train_verify_score")
    assert m == pytest.approx(
        {
            "train_verify_score/all": 4 / 8,
            "train_verify_score/libero_object": 3 / 6,
            "train_verify_score/libero_10": 1 / 2,
            "train_verify_score/libero_object/task_1": 1 / 2,
            "train_verify_score/libero_object/task_2": 2 / 4,
            "train_verify_score/libero_10/task_0": 1 / 2,
        }
    )
    assert success_rates(np.array([]), np.array([]), np.array([]), "x") == {"x/all": 0.0}
