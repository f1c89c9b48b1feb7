#!/usr/bin/env bash
# One scripted demonstration per task, one multi-task tiny policy, GRPO, held-out evaluation.
#
#   bash scripts/bench/one_demo.sh                          # libero_spatial tasks 0-3, the defaults below
#   TASKS=0,1,2,3,6,7 GRPO_STEPS=32 bash scripts/bench/one_demo.sh
#
# Stages (each is skipped when its output exists, so a stopped run continues where it stopped):
#   1. one expert demonstration per task (the first initial state of 0-39 the expert solves);
#   2. SFT of a tiny OpenVLA-OFT from scratch on them (multi-task), then the action logits scaled by
#      $SCALE (greedy actions unchanged; see "Why the shipped checkpoint is temperature-scaled");
#   3. scripts/demo.py: greedy evaluation on the held-out initial states 40-49 with seeded pose
#      perturbations ($VAL_REPEATS seeds each: 4 tasks x 10 x 5 = 200 episodes), GRPO with the
#      published recipe (T=1.6, clip [0.8, 1.28], dynamic sampling) on initial states 0-39, evaluation
#      every $TEST_FREQ steps and at the end.
# Prints the before/after table and one JSON line:
#   {"bench": "one_demo", "suite", "tasks", "demos_per_task": 1, "sft_steps", "logit_scale",
#    "sft_success", "sft_ci95", "rl_success", "rl_ci95", "improvement_points", "curve": [{"step",
#    "success", "ci95", "per_task": {task: {"success", "ci95", "episodes"}}}], "wall_time_s", ...}
# wall_time_s counts the whole bench (demonstrations and SFT included).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export MUJOCO_GL="${MUJOCO_GL:-egl}" PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}" RAY_AUTH_MODE=disabled
PY="$ROOT/.venv/bin/python"

SUITE=${SUITE:-libero_spatial}
TASKS=${TASKS:-0,1,2,3}
SFT_STEPS=${SFT_STEPS:-3000}
SCALE=${SCALE:-3.2}
GRPO_STEPS=${GRPO_STEPS:-24}
TEST_FREQ=${TEST_FREQ:-8}
VAL_REPEATS=${VAL_REPEATS:-5}
MAX_STEPS=${MAX_STEPS:-220}   # OpenVLA-OFT's libero_spatial limit
OUT=${OUT:-$ROOT/outputs/one_demo/${SUITE}_t${TASKS//,/-}}
mkdir -p "$OUT"
STARTED=${STARTED:-$(date +%s)}
[ -f "$OUT/started" ] || echo "$STARTED" > "$OUT/started"
STARTED=$(cat "$OUT/started")

if [ ! -f "$OUT/demos/.done" ]; then
  echo "[one_demo] 1/3: one demonstration per task of $SUITE tasks $TASKS" >&2
  "$PY" scripts/collect_demos.py --suite "$SUITE" --tasks "$TASKS" --init-states 0-39 \
      --demos-per-task 1 --out-dir "$OUT/demos" --workers 2
  touch "$OUT/demos/.done"
fi

SFT_CKPT="$OUT/sft/global_step_${SFT_STEPS}/actor"
if [ ! -f "$SFT_CKPT/config.json" ]; then
  echo "[one_demo] 2/3: SFT, $SFT_STEPS steps" >&2
  "$PY" -m verl.trainer.main_sft \
      data.paths="[$OUT/demos]" data.suite="$SUITE" data.task_ids="[$TASKS]" data.demos_per_task=1 \
      model.init=tiny model.use_proprio=true optim.lr=2e-3 optim.warmup_style=cosine \
      trainer.total_training_steps="$SFT_STEPS" trainer.train_batch_size=32 \
      trainer.micro_batch_size_per_gpu=32 trainer.n_gpus_per_node=1 trainer.test_freq=-1 trainer.eval_last=false \
      trainer.save_freq="$SFT_STEPS" env.num_workers=2 trainer.default_local_dir="$OUT/sft"
fi
SCALED="$OUT/sft_scaled"
if [ ! -f "$SCALED/config.json" ]; then
  "$PY" scripts/temperature_scale.py --checkpoint "$SFT_CKPT" --scale "$SCALE" --out "$SCALED"
fi

echo "[one_demo] 3/3: evaluate, GRPO for $GRPO_STEPS steps, evaluate" >&2
"$PY" scripts/demo.py --checkpoint "$SCALED" --out "$OUT/grpo" --suite "$SUITE" --tasks "$TASKS" \
    --val-repeats "$VAL_REPEATS" --max-steps "$MAX_STEPS" --steps "$GRPO_STEPS" \
    --test-freq "$TEST_FREQ" --seed 1 --json "$@" | tee "$OUT/demo_summary.jsonl"

"$PY" - "$OUT/demo_summary.jsonl" "$STARTED" "$SFT_STEPS" "$SCALE" <<'EOF'
import json, sys, time
line = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
line.update(bench="one_demo", demos_per_task=1, sft_steps=int(sys.argv[3]), logit_scale=float(sys.argv[4]),
            grpo_wall_time_s=line["wall_time_s"], wall_time_s=round(time.time() - float(sys.argv[2]), 1))
print(json.dumps(line))
EOF
