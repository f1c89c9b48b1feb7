#!/usr/bin/env bash
# SFT of a tiny random OpenVLA-OFT policy on scripted-expert LIBERO demonstrations, on CPU.
#
#   bash examples/run_sft_libero_cpu.sh                       # collect demos if missing, then train
#   DEMOS_PER_TASK=1 STEPS=600 bash examples/run_sft_libero_cpu.sh
#
# The checkpoint lands in $OUT/global_step_$STEPS/actor (HF layout, dataset_statistics.json under
# the suite name); GRPO starts from it with
#   python -m verl.trainer.main_ppo actor_rollout_ref.model.path=$OUT/global_step_$STEPS/actor \
#       actor_rollout_ref.model.use_proprio=true data.task_suite_name=$SUITE data.task_ids=[$TASKS] ...
set -euo pipefail

SUITE=${SUITE:-libero_object}
TASKS=${TASKS:-0,1,2,3}
DEMOS_PER_TASK=${DEMOS_PER_TASK:-10}
STEPS=${STEPS:-3000}
DEMO_DIR=${DEMO_DIR:-data/${SUITE}_expert}
OUT=${OUT:-outputs/sft/${SUITE}_tiny_d${DEMOS_PER_TASK}}

export MUJOCO_GL=${MUJOCO_GL:-egl} RAY_AUTH_MODE=disabled

# Demonstrations from initial states 0-39; evaluation uses the held-out states 40-49.
python scripts/collect_demos.py --suite "$SUITE" --tasks "$TASKS" --init-states 0-39 \
    --demos-per-task "$DEMOS_PER_TASK" --out-dir "$DEMO_DIR" --workers 2

python -m verl.trainer.main_sft \
    data.paths="[$DEMO_DIR]" \
    data.suite="$SUITE" \
    data.task_ids="[$TASKS]" \
    data.demos_per_task="$DEMOS_PER_TASK" \
    model.init=tiny \
    model.use_proprio=true \
    optim.lr=2e-3 \
    optim.warmup_style=cosine \
    trainer.total_training_steps="$STEPS" \
    trainer.train_batch_size=32 \
    trainer.micro_batch_size_per_gpu=32 \
    trainer.n_gpus_per_node=1 \
    trainer.test_freq=$((STEPS / 2)) \
    trainer.val_init_states=40-49 \
    trainer.val_videos_per_task=1 \
    env.num_workers=2 \
    trainer.default_local_dir="$OUT" \
    "$@"
