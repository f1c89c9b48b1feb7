#!/usr/bin/env bash
# GRPO on RoboTwin 2.0 with an OpenVLA-OFT (token-head) SFT checkpoint, SimpleVLA-RL's recipe:
# chunks of 25 x 14 (350 action tokens), BOUNDS min/max statistics under "<task>_1k", proprio on, one
# head-camera image, two Piper arms 0.6 m apart, the per-task step limits of SimpleVLA-RL's rollout.
#
# Needs: bash scripts/setup_robotwin.sh (the simulator venv) and the official assets (SETUP.md, section 5).
# Single node:   TASK=stack_blocks_two ROBOTWIN_ASSETS_ROOT=/shared/robotwin_assets NUM_GPUS=8 \
#                  bash examples/run_openvla_oft_rl_twin2.sh
# Any further argument is passed to Hydra, e.g. `trainer.val_only=True` or `env.robotwin2.protocol=official`.
set -euo pipefail

SFT_MODEL_PATH=${SFT_MODEL_PATH:?set SFT_MODEL_PATH to an OpenVLA-OFT RoboTwin checkpoint directory (HF layout)}
ROBOTWIN_ASSETS_ROOT=${ROBOTWIN_ASSETS_ROOT:?set ROBOTWIN_ASSETS_ROOT to the folder holding RoboTwin assets/}
TASK=${TASK:-stack_blocks_two}                   # one RoboTwin task; the suite is robotwin2_$TASK
CKPT_PATH=${CKPT_PATH:-$PWD/checkpoints}
EXPERIMENT_NAME=${EXPERIMENT_NAME:-openvla-oft-grpo-twin2-${TASK}}
PROJECT_NAME=${PROJECT_NAME:-verl-vla}
NUM_GPUS=${NUM_GPUS:-8}                           # GPUs per node
NUM_NODES=${NUM_NODES:-1}
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-64}
TRAJ_MINI_BATCH_SIZE=${TRAJ_MINI_BATCH_SIZE:-8}   # SimpleVLA-RL sets it per task (its robotwin2_tasks_info.txt)
SHADER=${SHADER:-rt}                              # rt on GPU nodes (what the checkpoints saw); default = raster
TASK_CONFIG=${TASK_CONFIG:-demo_randomized}       # SimpleVLA-RL's RL setting; demo_clean needs only the robot
ALIGN_PATH=${ALIGN_PATH:-$(dirname "$0")/../align.json}

export TOKENIZERS_PARALLELISM=true HYDRA_FULL_ERROR=1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True

python -m verl.trainer.main_ppo \
  env.name=robotwin2 \
  env.robotwin2.assets_root="$ROBOTWIN_ASSETS_ROOT" \
  env.robotwin2.embodiment=[piper,piper,0.6] \
  env.robotwin2.task_config="$TASK_CONFIG" \
  env.robotwin2.shader="$SHADER" \
  env.robotwin2.protocol=simplevla \
  env.num_workers=8 \
  env.reset_timeout_s=360 \
  env.step_timeout_s=120 \
  data.task_suite_name="robotwin2_${TASK}" \
  data.train_init_states=0-999 \
  data.val_init_states=1000-1127 \
  data.n_samples=8 \
  data.train_batch_size="$TRAIN_BATCH_SIZE" \
  data.filter_accuracy=True \
  data.accuracy_lower_bound=0.1 \
  data.accuracy_upper_bound=0.9 \
  actor_rollout_ref.model.path="$SFT_MODEL_PATH" \
  actor_rollout_ref.model.vla=openvla-oft \
  actor_rollout_ref.model.action_token_len=14 \
  actor_rollout_ref.model.action_chunks_len=25 \
  actor_rollout_ref.model.unnorm_key="${TASK}_1k" \
  actor_rollout_ref.model.num_images_in_input=1 \
  actor_rollout_ref.model.use_proprio=True \
  actor_rollout_ref.model.image_pipeline=crop_resize \
  actor_rollout_ref.actor.optim.lr=5e-6 \
  actor_rollout_ref.actor.optim.warmup_style=constant \
  actor_rollout_ref.actor.ppo_mini_batch_size=128 \
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1 \
  actor_rollout_ref.actor.traj_mini_batch_size="$TRAJ_MINI_BATCH_SIZE" \
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
