"""GRPO training entry point.

    python -m verl.trainer.main_ppo actor_rollout_ref.model.path=/ckpt data.task_suite_name=libero_10
    python -m verl.trainer.main_ppo --cfg job          # print the whole config tree

Hydra parses the overrides against the structured schema (unknown keys and wrong types are errors
that name the key); `validate_config` checks values; then the Ray driver runs `RayTrainer.fit`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from verl.trainer.config import PPOConfig, register_configs, validate_config

register_configs()

# Variables every worker needs whatever align.json says; align.json's values take precedence.
DEFAULT_ENV_VARS = {"TOKENIZERS_PARALLELISM": "true", "NCCL_DEBUG": "WARN", "RAY_AUTH_MODE": "disabled"}


def load_runtime_env(path: str) -> dict[str, Any]:
    """Ray runtime_env from `trainer.runtime_env` (align.json), with the defaults and the caller's
    rendering/WandB variables added. Values are never printed: they may hold API keys."""
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


def run_ppo(config: PPOConfig) -> dict[str, float]:
    import ray

    from verl.trainer.ppo.ray_trainer import RayTrainer

    runtime_env = load_runtime_env(config.trainer.runtime_env)
    # The driver process needs the runtime env's variables too (WandB key, rendering backend).
    for key, value in runtime_env["env_vars"].items():
        os.environ.setdefault(key, value)
    started_ray = False
    if not ray.is_initialized():
        # Without an explicit address start a private local instance; never attach to whatever
        # cluster another job left running on this machine.
        address = config.trainer.ray_address or os.environ.get("RAY_ADDRESS") or "local"
        ray.init(
            address=address,
            runtime_env=runtime_env,
            include_dashboard=False,
            log_to_driver=True,
            ignore_reinit_error=True,
        )
        started_ray = True
    try:
        trainer = RayTrainer(config)
        try:
            return trainer.fit()
        finally:
            trainer.shutdown()
    finally:
        if started_ray:
            ray.shutdown()


@hydra.main(version_base=None, config_path=None, config_name="ppo_trainer")
def main(cfg: DictConfig) -> None:
    config: PPOConfig = OmegaConf.to_object(cfg)
    validate_config(config)
    run_ppo(config)


if __name__ == "__main__":
    main()
