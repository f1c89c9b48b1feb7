"""One GRPO update through the real worker on 2 gloo ranks equals the same update on 1 rank, with a
learning signal: fixed non-zero advantages on a batch sampled by the tiny policy.

The batch is built so that every multi-rank mechanism matters:
- the two ranks hold different numbers of decision steps (rank 0: 11, rank 1: 5), so rank 1 runs
  zero-weight dummy forwards to keep the FSDP collectives in step (a mismatch hangs the test);
- loss_agg_mode=token-mean with unequal token counts per rank, so per-rank loss normalisation
  gives a different gradient than the global one (checks the cross-rank loss weights);
- kl_loss_coef > 0, so the sharded reference policy takes part;
- the rollout replica is bf16, so the sync is checked against the actor cast to bf16, bit for bit.

Tolerance of the 1-vs-2-rank comparison: the first AdamW step moves each weight by about
lr * g / (|g| + eps) ~ lr = 1e-3. The two runs differ only in the order of fp32 reductions
(relative error ~1e-6 in g), which changes that step by far less than 1e-5 = 1% of lr. A wrong
loss weight or a missed gradient changes it by O(lr) on many weights; the test also asserts the
update moved weights by much more than the tolerance.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from ray.cloudpickle import register_pickle_by_value

from verl.protocol import DataProto
from verl.single_controller import Dispatch, RayResourcePool, RayWorkerGroup
from verl.workers.fsdp_workers import ActorRolloutWorker
from verl.workers.rollout.env_rollout import Episode, Trajectory
from verl.workers.rollout.trajectories import trajectories_to_proto

pytestmark = [pytest.mark.ray, pytest.mark.slow]
register_pickle_by_value(sys.modules[__name__])

# Decision steps per trajectory; the first four go to rank 0, the last four to rank 1.
STEPS = (3, 3, 2, 3, 1, 1, 1, 2)
ADVANTAGE_SIGN = (1.0, -1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0)
LR = 1e-3
ATOL = 1e-5


class ProbeWorker(ActorRolloutWorker):
    def weights(self) -> tuple[dict, dict]:
        """(actor full state dict, rollout weights), both on CPU. A collective."""
        from verl.utils.fsdp_utils import full_state_dict

        actor = full_state_dict(self.policy.model)
        if self.rollout_policy is self.policy:  # one rank samples through the actor itself
            return actor, {}
        rollout = {k: v.detach().cpu().clone() for k, v in self.rollout_policy.model.named_parameters()}
        return actor, rollout


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", unnorm_key="libero_object")


def sampled_batch(path) -> DataProto:
    """8 trajectories of random-image observations sampled by the tiny policy; fixed advantages."""
    from verl.models.openvla_oft.policy import OpenVLAOFTPolicy

    policy = OpenVLAOFTPolicy.from_pretrained(path)
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    trajs = []
    for i, n in enumerate(STEPS):
        t = Trajectory(Episode("libero_object", i % 2, i, i, uid=f"g{i // 4}"))
        t.instruction = ["pick up the ketchup and place it in the basket", "pick up the milk"][i % 2]
        for _ in range(n):
            image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            obs = {"images": {"agentview": image}, "instruction": t.instruction}
            out = policy.act([obs], temperature=1.6, generator=gen)
            t.jpegs.append(out.jpegs[0])
            t.action_tokens.append(out.action_tokens[0].numpy().astype(np.uint8))
            t.log_probs.append(out.log_probs[0].numpy())
        t.finish_step = n * 8 - (i % 3)  # some last chunks stopped early
        t.success = ADVANTAGE_SIGN[i] > 0
        trajs.append(t)
    data = trajectories_to_proto(trajs, chunk=8, action_dim=7, horizon=None, max_decisions=3)
    mask = data.batch["response_mask"].float()
    data.batch["advantages"] = torch.tensor(ADVANTAGE_SIGN)[:, None] * mask
    return data


def run_update(path, world_size: int, data: DataProto) -> dict:
    from verl.trainer.config.compose import compose_config

    config = compose_config(
        [
            f"actor_rollout_ref.model.path={path}",
            "data.task_suite_name=libero_object",
            "data.train_batch_size=2",
            "data.n_samples=4",
            "actor_rollout_ref.actor.ppo_mini_batch_size=8",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
            "actor_rollout_ref.actor.traj_mini_batch_size=2",
            "actor_rollout_ref.actor.loss_agg_mode=token-mean",
            "actor_rollout_ref.actor.kl_loss_coef=0.01",
            f"actor_rollout_ref.actor.optim.lr={LR}",
            "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=1",
            "actor_rollout_ref.rollout.weights_dtype=bf16",
            "trainer.device=cpu",
            f"trainer.n_gpus_per_node={world_size}",
        ]
    )
    pool = RayResourcePool([world_size], use_gpu=False, num_cpus_per_worker=1)
    wg = RayWorkerGroup(pool, ProbeWorker)
    dp = Dispatch.DP_COMPUTE_PROTO
    try:
        wg.call("init_model", config, 1)
        initial, _ = wg.call("weights")[0]
        old = wg.call("compute_log_prob", data, dispatch_mode=dp)
        ref = wg.call("compute_ref_log_prob", data, dispatch_mode=dp)
        batch = data.union(old).union(ref)
        metrics = wg.call("update_actor", batch, dispatch_mode=dp)
        after = wg.call("weights")
    finally:
        wg.shutdown()
        pool.remove()
    return {"initial": initial, "old": old, "ref": ref, "metrics": metrics, "after": after}


# Ranks out of step (a missing dummy forward) deadlock in a collective: fail instead of hanging.
@pytest.mark.timeout(600)
def test_two_rank_update_equals_one_rank(tiny_ckpt, ray_local):
    data = sampled_batch(tiny_ckpt)
    one = run_update(tiny_ckpt, 1, data)
    two = run_update(tiny_ckpt, 2, data)
    mask = data.batch["response_mask"]

    # Old log-probs: the same on 1 and 2 ranks, and equal to the sampling-time ones (same weights).
    for run in (one, two):
        torch.testing.assert_close(
            run["old"].batch["old_log_probs"][mask], data.batch["rollout_log_probs"][mask], atol=1e-5, rtol=0
        )
        # The bf16 reference is the initial policy: its log-probs match to bf16 precision.
        gap = (run["ref"].batch["ref_log_probs"] - run["old"].batch["old_log_probs"])[mask].abs()
        assert float(gap.max()) < 0.1
    torch.testing.assert_close(two["ref"].batch["ref_log_probs"], one["ref"].batch["ref_log_probs"])

    # A real gradient, of the same global norm on every rank as on one rank (Adam hides a wrong
    # overall loss scale in the weights; the norm, taken before clipping, does not).
    norm = one["metrics"][0]["actor/grad_norm"]
    assert norm > 1e-3
    for m in two["metrics"]:
        assert m["actor/grad_norm"] == pytest.approx(norm, rel=1e-4)

    # The same weights after the update, on both ranks of the 2-rank run.
    reference, _ = one["after"][0]
    moved = max(float((reference[k] - one["initial"][k]).abs().max()) for k in reference)
    assert moved > 50 * ATOL  # the update is far larger than the tolerance
    for actor, _ in two["after"]:
        assert set(actor) == set(reference)
        for key, value in reference.items():
            torch.testing.assert_close(actor[key], value, atol=ATOL, rtol=0, msg=key)

    # After the sync each rank's bf16 rollout replica is the actor cast to bf16, bit for bit.
    for actor, rollout in two["after"]:
        assert rollout and set(rollout) <= set(actor)
        for key, value in rollout.items():
            assert value.dtype == torch.bfloat16
            assert torch.equal(value, actor[key].to(torch.bfloat16)), key
