#!/usr/bin/env bash
# ManiSkill3 on CPU, from scratch: scripted demonstrations -> SFT of the tiny OpenVLA-OFT policy ->
# greedy evaluation on held-out seeds -> GRPO (SimpleVLA-RL's recipe, scaled down) -> evaluation,
# with 95% Wilson intervals (scripts/demo.py prints the table and writes the plot).
#
#   bash examples/run_maniskill_cpu.sh                 # PickCube, PushCube, PullCube
#   TASKS=0,1 GRPO_STEPS=12 bash examples/run_maniskill_cpu.sh
#
# Seeds are initial states: demonstrations use seeds 0-99, GRPO trains on 0-9999, evaluation uses the
# held-out seeds 90000-(90000+VAL_SEEDS-1).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
TASKS=${TASKS:-0,1,2}
DEMOS_PER_TASK=${DEMOS_PER_TASK:-10}
SFT_STEPS=${SFT_STEPS:-1500}
GRPO_STEPS=${GRPO_STEPS:-8}
VAL_SEEDS=${VAL_SEEDS:-20}
MAX_STEPS=${MAX_STEPS:-48}
OUT=${OUT:-$ROOT/outputs/maniskill}
export RAY_AUTH_MODE=disabled

"$PY" "$ROOT/scripts/collect_demos.py" --env maniskill --tasks "$TASKS" --init-states 0-99 \
    --demos-per-task "$DEMOS_PER_TASK" --out-dir "$OUT/demos" --workers 2

"$PY" -m verl.trainer.main_sft \
    env.name=maniskill env.num_workers=1 \
    data.paths="[$OUT/demos]" data.suite=maniskill data.task_ids="[$TASKS]" \
    data.demos_per_task="$DEMOS_PER_TASK" \
    model.init=tiny model.use_proprio=true optim.lr=2e-3 \
    trainer.total_training_steps="$SFT_STEPS" trainer.test_freq=-1 trainer.eval_last=false \
    trainer.log_freq=100 trainer.default_local_dir="$OUT/sft"

"$PY" "$ROOT/scripts/demo.py" --out "$OUT/grpo" \
    --checkpoint "$OUT/sft/global_step_$SFT_STEPS/actor" \
    --suite maniskill --tasks "$TASKS" \
    --train-init-states 0-9999 --val-init-states "90000-$((90000 + VAL_SEEDS - 1))" --val-repeats 1 \
    --pos-noise 0 --yaw-noise 0 --max-steps "$MAX_STEPS" --env-workers 2 \
    --steps "$GRPO_STEPS" --json \
    --extra env.name=maniskill actor_rollout_ref.model.unnorm_key=maniskill "$@"
