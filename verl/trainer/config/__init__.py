"""Structured configuration: dataclasses registered in Hydra's ConfigStore are the one source of
defaults; `validate_config` is the one place that checks values."""

from verl.trainer.config.ppo import (
    ActorConfig,
    ActorRolloutRefConfig,
    AlgorithmConfig,
    DataConfig,
    FSDPConfig,
    ModelConfig,
    OptimConfig,
    PPOConfig,
    RolloutConfig,
    TrainerConfig,
    VerifierConfig,
)
from verl.trainer.config.validate import ConfigError, parse_id_ranges, validate_config

__all__ = [
    "ActorConfig",
    "ActorRolloutRefConfig",
    "AlgorithmConfig",
    "ConfigError",
    "DataConfig",
    "FSDPConfig",
    "ModelConfig",
    "OptimConfig",
    "PPOConfig",
    "RolloutConfig",
    "TrainerConfig",
    "VerifierConfig",
    "parse_id_ranges",
    "validate_config",
]
