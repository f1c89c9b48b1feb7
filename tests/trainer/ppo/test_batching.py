import pytest

from verl.trainer.config.batching import BatchPlanError, batch_plan


@pytest.mark.parametrize(
    "nodes,gpus,expect_mini,expect_accum",
    [(1, 8, 16, 16), (2, 8, 8, 8), (1, 1, 128, 128), (4, 8, 4, 4), (1, 2, 64, 64)],
)
def test_simplevla_recipe_for_several_cluster_shapes(nodes, gpus, expect_mini, expect_accum):
    # 64 prompts x 8 samples, mini-batch 128 trajectories, 1 trajectory per micro-batch per GPU.
    plan = batch_plan(64, 8, 128, 1, nodes * gpus)
    assert plan.trajectories_per_step == 512
    assert plan.trajectories_per_rank * plan.world_size == 512
    assert plan.mini_batch_per_rank == expect_mini
    assert plan.grad_accum_steps == expect_accum
    assert plan.optimizer_steps == 4


def test_micro_batch_larger_than_per_rank_mini_is_clamped():
    plan = batch_plan(2, 4, 8, 16, 2)
    assert plan.micro_batch_per_rank == 4 and plan.grad_accum_steps == 1 and plan.optimizer_steps == 1


def test_errors_name_the_field():
    with pytest.raises(BatchPlanError, match="data.train_batch_size"):
        batch_plan(3, 1, 3, 1, 2)
    with pytest.raises(BatchPlanError, match="ppo_mini_batch_size"):
        batch_plan(64, 8, 100, 1, 8)
    with pytest.raises(BatchPlanError, match="ppo_micro_batch_size_per_gpu"):
        batch_plan(64, 8, 128, 3, 8)
