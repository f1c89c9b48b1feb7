#!/usr/bin/env bash
# GRPO on LIBERO with the original OpenVLA (one action of 7 autoregressive tokens per policy call),
# starting from a released `openvla/openvla-7b-finetuned-libero-<suite>` checkpoint.
#
# Single node:   SFT_MODEL_PATH=/ckpts/openvla-7b-finetuned-libero-spatial DATASET_NAME=libero_spatial \
#                NUM_GPUS=8 bash examples/run_openvla_rl_libero.sh
# Multi-node:    start a Ray cluster first (README: "Multi-node"), then on the head node
#                NUM_NODES=2 NUM_GPUS=8 bash examples/run_openvla_rl_libero.sh
# Any further argument is passed to Hydra, e.g. `trainer.val_only=True` (the official evaluation's
# greedy decoding) or `actor_rollout_ref.model.vla=openvla-full-vocab`.
#
# SimpleVLA-RL has OpenVLA code but no OpenVLA launch script or published OpenVLA RL results, so the
# values are its OFT LIBERO recipe (examples/run_openvla_oft_rl_libero.sh) with these changes:
# - action_chunks_len=1: OpenVLA predicts one action per call (7 tokens, KV-cached decoding);
# - env.max_steps is left to the suite's official LIBERO limit (spatial 220, object 280, goal 300,
#   libero_10 520, libero_90 400) instead of SimpleVLA-RL's 512 for every suite: with one action per
#   call every step is a policy query, and the official limits are what the published OpenVLA
#   LIBERO numbers (76.5% average) were measured with;
# - sampling is over the 256 action ids (model.vla=openvla, as RLinf and our OFT policy do) at the OFT
#   recipe's temperature 1.6; SimpleVLA-RL's OpenVLA path samples the full vocabulary at its yaml
#   default 1.0 (model.vla=openvla-full-vocab actor_rollout_ref.rollout.temperature=1.0 reproduces it);
# - traj_mini_batch_size=16 decision steps per forward, as SimpleVLA-RL's OpenVLA actor slices a
#   trajectory; a trajectory now holds up to 520 decision steps instead of 65;
# - num_images_in_input=1 and no proprio: the released checkpoints read the agent view only.
# lr 5e-6 constant, 8 samples per prompt, 64 prompts per step, clip [0.8, 1.28], no KL, no entropy
# bonus, dynamic sampling to groups with success in [0.1, 0.9] are the OFT recipe's.
set -euo pipefail

SFT_MODEL_PATH=${SFT_MODEL_PATH:?set SFT_MODEL_PATH to an OpenVLA checkpoint directory (HF layout)}
CKPT_PATH=${CKPT_PATH:-$PWD/checkpoints}
DATASET_NAME=${DATASET_NAME:-libero_spatial}     # libero_spatial | libero_object | libero_goal | libero_10
EXPERIMENT_NAME=${EXPERIMENT_NAME:-openvla-grpo-${DATASET_NAME}}
PROJECT_NAME=${PROJECT_NAME:-verl-vla}
NUM_GPUS=${NUM_GPUS:-8}                           # GPUs per node
NUM_NODES=${NUM_NODES:-1}
ALIGN_PATH=${ALIGN_PATH:-$(dirname "$0")/../align.json}
# WANDB_API_KEY in the environment (or in align.json) switches WandB online; otherwise it logs offline.

export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl}
export TOKENIZERS_PARALLELISM=true HYDRA_FULL_ERROR=1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True

python -m verl.trainer.main_ppo \
  data.task_suite_name="$DATASET_NAME" \
  data.train_init_states=0-49 \
  data.val_init_states=0-49 \
  data.n_samples=8 \
  data.train_batch_size=64 \
  data.filter_accuracy=True \
  data.accuracy_lower_bound=0.1 \
  data.accuracy_upper_bound=0.9 \
  actor_rollout_ref.model.path="$SFT_MODEL_PATH" \
  actor_rollout_ref.model.vla=openvla \
  actor_rollout_ref.model.action_token_len=7 \
  actor_rollout_ref.model.action_chunks_len=1 \
  actor_rollout_ref.model.unnorm_key="$DATASET_NAME" \
  actor_rollout_ref.model.num_images_in_input=1 \
  actor_rollout_ref.model.use_proprio=False \
  actor_rollout_ref.actor.optim.lr=5e-6 \
  actor_rollout_ref.actor.optim.warmup_style=constant \
  actor_rollout_ref.actor.ppo_mini_batch_size=128 \
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1 \
  actor_rollout_ref.actor.traj_mini_batch_size=16 \
  actor_rollout_ref.actor.grad_clip=1.0 \
  actor_rollout_ref.actor.clip_ratio_low=0.2 \
  actor_rollout_ref.actor.clip_ratio_high=0.28 \
  actor_rollout_ref.actor.entropy_coeff=0.0 \
  actor_rollout_ref.actor.fsdp_config.mixed_precision=bf16 \
  actor_rollout_ref.rollout.temperature=1.6 \
  actor_rollout_ref.rollout.micro_batch_size=16 \
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4 \
  algorithm.adv_estimator=grpo \
  algorithm.kl_ctrl.kl_coef=0.0 \
  env.num_workers=8 \
  trainer.logger=[console,jsonl,wandb] \
  trainer.project_name="$PROJECT_NAME" \
  trainer.experiment_name="$EXPERIMENT_NAME" \
  trainer.default_local_dir="$CKPT_PATH/$PROJECT_NAME/$EXPERIMENT_NAME" \
  trainer.n_gpus_per_node="$NUM_GPUS" \
  trainer.nnodes="$NUM_NODES" \
  trainer.num_cpus_per_worker=8 \
  trainer.save_freq=25 \
  trainer.test_freq=4 \
  trainer.total_epochs=100 \
  trainer.val_before_train=True \
  trainer.resume_mode=auto \
  trainer.runtime_env="$ALIGN_PATH" \
  "$@"
