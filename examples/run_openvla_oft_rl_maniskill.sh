#!/usr/bin/env bash
# GRPO on ManiSkill3 (our CPU-runnable Panda benchmark, verl/envs/maniskill) with an OpenVLA-OFT
# (token-head) SFT checkpoint, SimpleVLA-RL's recipe. The SFT checkpoint comes from our scripted
# demonstrations (examples/run_maniskill_cpu.sh shows the pipeline; its dataset_statistics.json key
# is "maniskill"). ManiSkill runs on CPU physics, one simulator per worker process; every worker
# renders with SAPIEN (here on the GPU; on CPU machines env.maniskill.render_backend=sapien_cpu, Mesa >= 25).
# Not a reproduction of RLinf's ManiSkill results (WidowX Bridge scenes, GPU simulation, HF assets).
#
# Single node:   SFT_MODEL_PATH=... NUM_GPUS=8 bash examples/run_openvla_oft_rl_maniskill.sh
# Multi-node:    start a Ray cluster first (README: "Multi-node"), then on the head node
#                NUM_NODES=2 NUM_GPUS=8 bash examples/run_openvla_oft_rl_maniskill.sh
# Any further argument is passed to Hydra, e.g. `trainer.val_only=True` or `data.task_ids=[0,1]`.
set -euo pipefail

SFT_MODEL_PATH=${SFT_MODEL_PATH:?set SFT_MODEL_PATH to an OpenVLA-OFT checkpoint directory (HF layout)}
CKPT_PATH=${CKPT_PATH:-$PWD/checkpoints}
TASK_IDS=${TASK_IDS:-0,1,2,3}                     # PickCube, PushCube, PullCube, StackCube (PlaceSphere = 4)
EXPERIMENT_NAME=${EXPERIMENT_NAME:-openvla-oft-grpo-maniskill}
PROJECT_NAME=${PROJECT_NAME:-verl-vla}
NUM_GPUS=${NUM_GPUS:-8}
NUM_NODES=${NUM_NODES:-1}
ALIGN_PATH=${ALIGN_PATH:-$(dirname "$0")/../align.json}

export TOKENIZERS_PARALLELISM=true HYDRA_FULL_ERROR=1
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True

# Seeds are initial states: 0-9999 train, 90000-90099 held out (the demonstrations use 0-99).
python -m verl.trainer.main_ppo \
  env.name=maniskill \
  env.maniskill.camera_size=224 \
  env.maniskill.render_backend=sapien_cuda \
  env.num_workers=8 \
  data.task_suite_name=maniskill \
  data.task_ids="[$TASK_IDS]" \
  data.train_init_states=0-9999 \
  data.val_init_states=90000-90099 \
  data.n_samples=8 \
  data.train_batch_size=64 \
  data.filter_accuracy=True \
  data.accuracy_lower_bound=0.1 \
  data.accuracy_upper_bound=0.9 \
  actor_rollout_ref.model.path="$SFT_MODEL_PATH" \
  actor_rollout_ref.model.vla=openvla-oft \
  actor_rollout_ref.model.action_token_len=7 \
  actor_rollout_ref.model.action_chunks_len=8 \
  actor_rollout_ref.model.unnorm_key=maniskill \
  actor_rollout_ref.model.num_images_in_input=1 \
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
