"""GRPO training entry point.

    python -m verl.trainer.main_ppo actor_rollout_ref.model.path=/ckpt data.task_suite_name=libero_10
    python -m verl.trainer.main_ppo --cfg job          # print the whole config tree

Hydra parses the overrides against the structured schema (unknown keys and wrong types are errors
that name the key); `validate_config` checks values; then the Ray driver runs `RayTrainer.fit`.
"""

from __future__ import annotations

from verl.trainer.config import PPOConfig, validate_config
from verl.trainer.config.entry import hydra_entry
from verl.trainer.ray_session import load_runtime_env, run_driver

__all__ = ["load_runtime_env", "main", "run_ppo"]


def run_ppo(config: PPOConfig) -> dict[str, float]:
    """Run the GRPO driver (starting a local Ray instance unless one is running or an address is
    given); returns the last validation metrics."""
    from verl.trainer.ppo.ray_trainer import RayTrainer
    from verl.trainer.preflight import preflight_ppo

    preflight_ppo(config)  # bad paths and files fail here, before Ray starts
    return run_driver(lambda: RayTrainer(config), config.trainer.runtime_env, config.trainer.ray_address)


def _validate_and_run(config: PPOConfig) -> None:
    validate_config(config)
    run_ppo(config)


def main() -> None:
    hydra_entry("ppo_trainer", PPOConfig, _validate_and_run)


if __name__ == "__main__":
    main()
