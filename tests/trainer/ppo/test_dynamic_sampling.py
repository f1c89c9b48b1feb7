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
    """`crash(init_state_id)` says whether the simulator of a group's second rollout crashes; a crashed
    episode is reported failed with an `env_error`, as the env pool reports it."""

    def __init__(self, crash=lambda state: False):
        self.calls = []
        self.crash = crash

    def call(self, method, gen, dispatch_mode=None):
        assert method == "generate_sequences", f"the driver called {method} on a skipped step"
        nt = gen.non_tensor_batch
        self.calls.append(len(gen))
        first_in_group = np.r_[True, nt["uid"][1:] != nt["uid"][:-1]]
        success = np.where(nt["init_state_id"].astype(int) % 4 == 0, 0.0, first_in_group.astype(float))
        crashed = np.array([self.crash(int(s)) for s in nt["init_state_id"]]) & ~first_in_group
        errors = np.where(crashed, "simulator worker died (SIGKILL)", "")
        return DataProto.from_dict(
            tensors={
                "success": torch.tensor(np.where(crashed, 0.0, success), dtype=torch.float32),
                "finish_step": torch.full((len(gen),), 10),
            },
            non_tensors={**nt, "env_error": errors.tolist()},
        )


def make_driver(tmp_path, refill, max_rounds=4, extra=(), crash=lambda state: False):
    cfg = compose_config(
        [
            *extra,
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
    driver.wg = ScriptedWorkers(crash)
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


def test_crash_hit_groups_are_never_trained_on_even_unfiltered(tmp_path):
    # No accuracy filter: every group is kept unless a simulator crashed in it (odd initial states).
    driver = make_driver(
        tmp_path, "missing", extra=["data.filter_accuracy=false"], crash=lambda s: s % 2 == 1
    )
    metrics = {}
    batch = driver._sample_groups(metrics)
    states = set(batch.non_tensor_batch["init_state_id"].tolist())
    assert states and all(s % 2 == 0 for s in states)
    assert (batch.non_tensor_batch["env_error"] == "").all()
    assert metrics["sampling/env_error_groups"] > 0 and metrics["sampling/skipped_step"] == 0.0


def test_nothing_kept_skips_the_step_with_a_warning_and_a_metric(tmp_path, caplog):
    # Every group either fails throughout (state % 4 == 0) or has a crashed rollout: nothing is
    # trainable after the round cap, so no update, whatever the fallback would have picked.
    driver = make_driver(tmp_path, "full", max_rounds=2, crash=lambda s: s % 4 != 0)
    metrics = {}
    assert driver._train_step(metrics) is None  # ScriptedWorkers fails on anything but a rollout
    assert driver.wg.calls == [8, 8]
    assert metrics["sampling/skipped_step"] == 1.0 and metrics["sampling/env_error_groups"] == 6
    assert "step 1 skipped" in caplog.text


def test_prompts_for_round_every_rank_gets_the_same_share():
    assert prompts_for_round(64, 1, 0, 8, 8, "missing") == 64
    assert prompts_for_round(64, 2, 61, 8, 8, "missing") == 6
    assert prompts_for_round(4, 1, 3, 1, 4, "missing") == 4  # 1 prompt x 1 sample cannot split over 4 ranks
    assert prompts_for_round(4, 1, 3, 2, 4, "missing") == 2
    assert prompts_for_round(64, 1, 61, 8, 8, "full") == 64
    with pytest.raises(BatchPlanError, match="data.refill"):
        prompts_for_round(4, 1, 3, 2, 4, "some")
