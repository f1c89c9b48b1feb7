#!/usr/bin/env bash
# GRPO with the tiny OpenVLA-OFT policy on CPU (2 cores are enough): the same code path as the GPU
# script, with sizes that fit a laptop. SFT_MODEL_PATH defaults to a fresh tiny random checkpoint.
#   bash examples/run_openvla_oft_rl_libero_cpu.sh [hydra overrides...]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl} RAY_AUTH_MODE=disabled HYDRA_FULL_ERROR=1

if [[ -z "${SFT_MODEL_PATH:-}" ]]; then
  SFT_MODEL_PATH="$ROOT/outputs/tiny_random_ckpt"
  [[ -f "$SFT_MODEL_PATH/config.json" ]] || "$PY" "$ROOT/scripts/make_tiny_checkpoint.py" "$SFT_MODEL_PATH" --unnorm-key libero_object
fi
DATASET_NAME=${DATASET_NAME:-libero_object}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-tiny-grpo-cpu}

"$PY" -m verl.trainer.main_ppo \
  actor_rollout_ref.model.path="$SFT_MODEL_PATH" \
  data.task_suite_name="$DATASET_NAME" \
  'data.task_ids=[0,1]' \
  data.train_init_states=0-39 \
  data.val_init_states=40-49 \
  data.n_samples=4 \
  data.train_batch_size=2 \
  actor_rollout_ref.actor.ppo_mini_batch_size=8 \
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
  actor_rollout_ref.actor.traj_mini_batch_size=16 \
  actor_rollout_ref.actor.optim.lr=1e-4 \
  actor_rollout_ref.actor.fsdp_config.mixed_precision=fp32 \
  env.num_workers=2 \
  trainer.device=cpu \
  trainer.n_gpus_per_node=1 \
  trainer.total_training_steps=10 \
  trainer.test_freq=5 \
  trainer.save_freq=5 \
  trainer.experiment_name="$EXPERIMENT_NAME" \
  trainer.default_local_dir="$ROOT/outputs/$EXPERIMENT_NAME" \
  "$@"
