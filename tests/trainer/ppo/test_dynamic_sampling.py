"""The driver's dynamic-sampling loop (`RayTrainer._sample_groups`) against a scripted worker group.

The worker group replaces the simulators with a rule: a group whose initial state is a multiple of 4
fails every rollout (filtered out), every other group has one success and one failure (kept).
"""

import json

import numpy as np
import pytest
import torch

from verl.envs.registry import get_env_spec
from verl.protocol import DataProto
from verl.trainer.config.batching import BatchPlanError, prompts_for_round
from verl.trainer.config.compose import compose_config
from verl.trainer.ppo.prompts import PromptSampler, build_prompts
from verl.trainer.ppo.ray_trainer import RayTrainer


class ScriptedWorkers:
    def __init__(self):
        self.calls = []

    def call(self, method, gen, dispatch_mode=None):
        assert method == "generate_sequences"
        nt = gen.non_tensor_batch
        self.calls.append(len(gen))
        first_in_group = np.r_[True, nt["uid"][1:] != nt["uid"][:-1]]
        success = np.where(nt["init_state_id"].astype(int) % 4 == 0, 0.0, first_in_group.astype(float))
        return DataProto.from_dict(
            tensors={
                "success": torch.tensor(success, dtype=torch.float32),
                "finish_step": torch.full((len(gen),), 10),
            },
            non_tensors={**nt, "env_error": [""] * len(gen)},
        )


def make_driver(tmp_path, refill, max_rounds=4):
    cfg = compose_config(
        [
            "actor_rollout_ref.model.path=/ckpt",
            "data.task_suite_name=libero_object",
            "data.task_ids=[0]",
            "data.train_init_states=0-15",
            "data.train_batch_size=4",
            "data.n_samples=2",
            "data.shuffle=false",
            f"data.max_sampling_rounds={max_rounds}",
            f"data.refill={refill}",
            "actor_rollout_ref.actor.ppo_mini_batch_size=8",
            "trainer.n_gpus_per_node=1",
        ]
    )
    driver = RayTrainer.__new__(RayTrainer)  # no Ray, no model: only what _sample_groups uses
    driver.config = cfg
    driver.out_dir = tmp_path
    driver.world_size = 1
    driver.global_step = 0
    driver.sampler = PromptSampler(
        build_prompts(get_env_spec("libero"), "libero_object", [0], "0-15"), False, 0
    )
    driver.wg = ScriptedWorkers()
    return driver


def rounds_logged(tmp_path):
    lines = (tmp_path / "prompts.jsonl").read_text().splitlines()
    return [[p[2] for p in json.loads(x)["prompts"]] for x in lines]


def test_refill_missing_rolls_out_only_the_groups_still_needed(tmp_path):
    driver = make_driver(tmp_path, "missing")
    metrics = {}
    batch = driver._sample_groups(metrics)
    # Round 1: states 0-3, state 0 dropped (3 kept); round 2: state 4 dropped; round 3: state 5 kept.
    assert rounds_logged(tmp_path) == [[0, 1, 2, 3], [4], [5]]
    assert driver.wg.calls == [8, 2, 2]
    assert len(batch) == 8 and sorted(set(batch.non_tensor_batch["init_state_id"].tolist())) == [1, 2, 3, 5]
    assert metrics["sampling/rounds"] == 3 and metrics["sampling/kept_groups"] == 4


def test_refill_full_rolls_out_a_whole_batch_again(tmp_path):
    driver = make_driver(tmp_path, "full")
    metrics = {}
    batch = driver._sample_groups(metrics)
    assert rounds_logged(tmp_path) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert driver.wg.calls == [8, 8]
    assert len(batch) == 8 and sorted(set(batch.non_tensor_batch["init_state_id"].tolist())) == [1, 2, 3, 5]
    assert metrics["sampling/kept_groups"] == 6


def test_round_cap_trains_on_what_was_kept(tmp_path):
    driver = make_driver(tmp_path, "missing", max_rounds=2)
    metrics = {}
    batch = driver._sample_groups(metrics)
    assert rounds_logged(tmp_path) == [[0, 1, 2, 3], [4]]
    assert len(batch) == 6 and metrics["sampling/kept_groups"] == 3


def test_prompts_for_round_every_rank_gets_the_same_share():
    assert prompts_for_round(64, 1, 0, 8, 8, "missing") == 64
    assert prompts_for_round(64, 2, 61, 8, 8, "missing") == 6
    assert prompts_for_round(4, 1, 3, 1, 4, "missing") == 4  # 1 prompt x 1 sample cannot split over 4 ranks
    assert prompts_for_round(4, 1, 3, 2, 4, "missing") == 2
    assert prompts_for_round(64, 1, 61, 8, 8, "full") == 64
    with pytest.raises(BatchPlanError, match="data.refill"):
        prompts_for_round(4, 1, 3, 2, 4, "some")
