"""Settings the GRPO and SFT trainers share: the run's identity, cluster, logging, resume and plugins
(`trainer.*`), the policy-model switches (`model.*` / `actor_rollout_ref.model.*`), and their checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from verl.utils.config_values import fail

RESUME_MODES = ("auto", "disable", "resume_path")
WANDB_MODES = ("auto", "online", "offline", "disabled")
DEVICES = ("auto", "cuda", "cpu")


@dataclass
class RunConfig:
    """`trainer.*` fields of every trainer."""

    project_name: str = "verl-vla"
    experiment_name: str = "run"
    # Any of console, jsonl, wandb.
    logger: list[str] = field(default_factory=lambda: ["console", "jsonl"])
    # auto: online when WANDB_API_KEY is set, else offline. Or online / offline / disabled.
    wandb_mode: str = "auto"
    nnodes: int = 1
    # GPUs per node; on a CPU-only machine the number of CPU worker processes per node.
    n_gpus_per_node: int = 1
    # auto (cuda when available), cuda, cpu.
    device: str = "auto"
    # CPUs Ray reserves per worker actor.
    num_cpus_per_worker: float = 1.0
    # Driver-side deadline in seconds for one call on all workers (a rollout round, an update, a save):
    # a rank that has not answered by then stops the run with an error naming the rank and the call;
    # the newest complete checkpoint stays resumable. Generous by default (a full-size rollout round takes
    # minutes, a full validation pass up to about half an hour); 0 = no deadline.
    worker_call_timeout_s: float = 7200.0
    # Root of checkpoints, metrics and videos for this experiment.
    default_local_dir: str = "outputs/${trainer.project_name}/${trainer.experiment_name}"
    # auto: resume from the newest complete checkpoint in default_local_dir; disable; resume_path.
    resume_mode: str = "auto"
    resume_from_path: Optional[str] = None
    # JSON file used as Ray's runtime_env (align.json); its env_vars reach every worker. Empty = none.
    runtime_env: str = ""
    # Address of an existing Ray cluster (multi-node: started with `ray start`); None = start one locally
    # (or join RAY_ADDRESS when it is set).
    ray_address: Optional[str] = None
    seed: int = 1
    # Progress bars on an interactive console; one line per finished stage otherwise.
    progress_bar: bool = True
    # Modules imported by the driver, every worker and every simulator process before names are
    # resolved: packages outside verl/ that register simulators (env.name) or policies (model.vla).
    plugins: list[str] = field(default_factory=list)


@dataclass
class PolicyModelConfig:
    """Model switches of every trainer."""

    # Registered policy name (verl.models.registry).
    vla: str = "openvla-oft"
    # Recompute activations in backward (vision blocks and Llama layers): on for the 7B launch script,
    # where it cuts the update's activations from ~41 GiB to ~4.4 GiB per rank (scripts/bench/memory_plan.py).
    enable_gradient_checkpointing: bool = False
    # LoRA rank; 0 = full fine-tuning. Checkpoints are saved merged.
    lora_rank: int = 0
    lora_alpha: int = 32
    # LoRA targets: "all-linear" = every linear layer except lm_head (peft's meaning), or module names
    # separated by commas (e.g. "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj").
    target_modules: str = "all-linear"


@dataclass
class AdamWConfig:
    """AdamW and its learning-rate schedule, for every trainer."""

    # Peak learning rate (after the warm-up).
    lr: float = 5e-6
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.01
    # Learning-rate schedule: constant, or cosine after the warm-up.
    warmup_style: str = "constant"
    # Linear warm-up length in optimiser steps.
    lr_warmup_steps: int = -1


def choice(name: str, value: Any, allowed: tuple) -> None:
    """Raise ConfigError unless `value` is one of `allowed`."""
    if value not in allowed:
        fail(name, value, f"allowed values: {', '.join(map(str, allowed))}")


def positive(name: str, value: Any) -> None:
    if value is None or value <= 0:
        fail(name, value, "must be > 0")


def non_negative(name: str, value: Any) -> None:
    if value is None or value < 0:
        fail(name, value, "must be >= 0")


def check_resume(trainer: Any) -> None:
    """`trainer.resume_mode` and `trainer.resume_from_path`."""
    choice("trainer.resume_mode", trainer.resume_mode, RESUME_MODES)
    if trainer.resume_mode == "resume_path" and not trainer.resume_from_path:
        fail(
            "trainer.resume_from_path",
            trainer.resume_from_path,
            "required when trainer.resume_mode=resume_path",
        )


def validate_run_config(trainer: RunConfig) -> None:
    """Checks of the shared `trainer.*` fields; raises ConfigError naming the first bad field."""
    from verl.utils.tracking import BACKENDS

    for backend in trainer.logger:
        choice("trainer.logger", backend, BACKENDS)
    choice("trainer.wandb_mode", trainer.wandb_mode, WANDB_MODES)
    choice("trainer.device", trainer.device, DEVICES)
    check_resume(trainer)
    positive("trainer.nnodes", trainer.nnodes)
    positive("trainer.n_gpus_per_node", trainer.n_gpus_per_node)
    positive("trainer.num_cpus_per_worker", trainer.num_cpus_per_worker)
    if trainer.worker_call_timeout_s < 0:
        fail(
            "trainer.worker_call_timeout_s",
            trainer.worker_call_timeout_s,
            "seconds > 0, or 0 for no deadline",
        )


def validate_policy_model(model: PolicyModelConfig, prefix: str) -> None:
    """Checks of the shared model fields under `prefix` (e.g. "actor_rollout_ref.model")."""
    from verl.models.registry import available_models

    choice(f"{prefix}.vla", model.vla, tuple(available_models()))
    non_negative(f"{prefix}.lora_rank", model.lora_rank)
