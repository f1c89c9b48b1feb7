"""The driver's step sends each rank's part of the batch into the object store once: old log-probs and
the update read the same objects, and the update gets only what the driver added in between."""

from __future__ import annotations

import numpy as np
import torch

from verl.protocol import DataProto
from verl.single_controller import Dispatch
from verl.single_controller.dispatch import split_for_ranks
from verl.trainer.config.compose import compose_config
from verl.trainer.ppo.ray_trainer import RayTrainer

WORLD = 2


class RecordingWorkers:
    """Stands in for the worker group: `put_per_rank` returns the parts themselves (as the workers
    would read them from the store) and records every call."""

    def __init__(self):
        self.puts, self.calls = [], []

    def put_per_rank(self, data):
        parts = split_for_ranks(data, WORLD)
        self.puts.append(parts)
        return parts

    def call(self, method, *args, dispatch_mode=None):
        self.calls.append((method, args, dispatch_mode))
        if method == "compute_log_prob":
            return [
                DataProto.from_dict(
                    tensors={
                        "old_log_probs": part.batch["rollout_log_probs"].clone(),
                        "old_entropy": torch.zeros_like(part.batch["rollout_log_probs"]),
                    }
                )
                for part in args[0]
            ]
        assert method == "update_actor"
        return [{"actor/pg_loss": 0.5}] * WORLD


def kept_batch(n=8, tokens=14):
    jpegs = np.empty(n, dtype=object)
    for i in range(n):
        jpegs[i] = f"ref-{i}"  # what the driver holds: opaque handles to the images
    return DataProto.from_dict(
        tensors={
            "success": torch.tensor([1.0, 0.0] * (n // 2)),
            "response_mask": torch.ones(n, tokens, dtype=torch.bool),
            "rollout_log_probs": -torch.rand(n, tokens),
            "finish_step": torch.full((n,), 2),
        },
        non_tensors={"jpegs": jpegs, "uid": [f"g{i // 2}" for i in range(n)]},
        meta_info={"bytes_per_decision_step": 1.0},
    )


def test_each_rank_part_is_put_once_and_reused(tmp_path, monkeypatch):
    cfg = compose_config(
        [
            "actor_rollout_ref.model.path=/ckpt",
            "data.task_suite_name=libero_object",
            "data.train_batch_size=4",
            "data.n_samples=2",
            "actor_rollout_ref.actor.ppo_mini_batch_size=8",
            f"trainer.n_gpus_per_node={WORLD}",
        ]
    )
    driver = RayTrainer.__new__(RayTrainer)
    driver.config, driver.out_dir, driver.world_size, driver.global_step = cfg, tmp_path, WORLD, 3
    driver.wg = RecordingWorkers()
    batch = kept_batch()

    def sample(metrics):
        metrics["rollout/env_steps"] = 16.0
        return batch

    monkeypatch.setattr(driver, "_sample_groups", sample)
    out = driver._train_step({"timing/gen": 1.0})

    (log_prob_call, update_call) = driver.wg.calls
    assert [c[0] for c in driver.wg.calls] == ["compute_log_prob", "update_actor"]
    assert all(c[2] is Dispatch.ALL_TO_ALL for c in driver.wg.calls)
    parts, added = driver.wg.puts
    # The same objects, not a second serialisation of the batch.
    assert log_prob_call[1][0] is parts and update_call[1][0] is parts
    assert update_call[1][1] is added
    assert all(
        sorted(a.tensor_keys()) == ["advantages", "old_entropy", "old_log_probs", "token_level_rewards"]
        for a in added
    )
    assert all(not a.non_tensor_batch and a.meta_info == {"global_step": 3} for a in added)
    # What a rank trains on equals its part of the full batch, as when the batch itself was sent.
    for rank, (part, extra) in enumerate(zip(parts, added)):
        merged, want = part.union(extra), split_for_ranks(out, WORLD)[rank]
        assert sorted(merged.tensor_keys()) == sorted(want.tensor_keys())
        for key in want.tensor_keys():
            assert torch.equal(merged.batch[key], want.batch[key]), key
        assert list(merged.non_tensor_batch["jpegs"]) == list(want.non_tensor_batch["jpegs"])
        assert merged.meta_info == want.meta_info
