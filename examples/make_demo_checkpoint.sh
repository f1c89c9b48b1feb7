#!/usr/bin/env bash
# Rebuild examples/checkpoints/tiny-sft-libero-object, the SFT checkpoint the main job starts from:
# 10 scripted-expert demonstrations per task (libero_object tasks 0-3, initial states 0-39), then SFT
# of a fresh tiny OpenVLA-OFT policy with proprio: 1500 steps at lr 2e-3, then 1500 more at lr 1e-3
# (sharper action distributions), then temperature scaling: every action logit x 3.2, so that the
# recipe's temperature-1.6 rollouts draw what the unscaled policy draws at 0.5 (greedy actions are
# unchanged; see scripts/temperature_scale.py and the README's main job). About 1 h of CPU time on
# 2 cores (collection is most of it). Held-out initial states 40-49 are never used.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
DEMO_DIR=${DEMO_DIR:-$ROOT/data/libero_object_expert}
OUT=${OUT:-$ROOT/outputs/sft/tiny-sft-libero-object}
export MUJOCO_GL=${MUJOCO_GL:-egl} RAY_AUTH_MODE=disabled

"$PY" "$ROOT/scripts/collect_demos.py" --suite libero_object --tasks 0,1,2,3 --init-states 0-39 \
    --demos-per-task 10 --out-dir "$DEMO_DIR" --workers 2

"$PY" -m verl.trainer.main_sft \
    data.paths="[$DEMO_DIR]" data.task_ids=[0,1,2,3] data.demos_per_task=10 \
    model.init=tiny model.use_proprio=true optim.lr=2e-3 \
    trainer.total_training_steps=1500 trainer.test_freq=-1 trainer.log_freq=100 \
    trainer.val_init_states=40-49 env.num_workers=1 trainer.default_local_dir="$OUT"

# Stage 2: continue from stage 1 at a lower peak learning rate.
"$PY" -m verl.trainer.main_sft \
    data.paths="[$DEMO_DIR]" data.task_ids=[0,1,2,3] data.demos_per_task=10 \
    model.init=pretrained model.path="$OUT/global_step_1500/actor" model.use_proprio=true optim.lr=1e-3 \
    trainer.total_training_steps=1500 trainer.test_freq=-1 trainer.eval_last=false trainer.log_freq=100 \
    trainer.default_local_dir="$OUT-cont"

# Stage 3: temperature scaling of the action head.
rm -rf "$OUT-scaled"
"$PY" "$ROOT/scripts/temperature_scale.py" --checkpoint "$OUT-cont/global_step_1500/actor" --scale 3.2 \
    --out "$OUT-scaled"

rm -rf "$ROOT/examples/checkpoints/tiny-sft-libero-object"
cp -r "$OUT-scaled" "$ROOT/examples/checkpoints/tiny-sft-libero-object"
