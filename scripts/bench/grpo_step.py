"""One GRPO step of the tiny OpenVLA-OFT policy on CPU, with the real LIBERO simulator.

Prints one JSON line:
    {"bench": "grpo_step", "rollout_s", "old_log_prob_s", "update_s", "env_steps_per_s",
     "bytes_per_decision_step", "image_decode_per_s_per_core", ...}
`bytes_per_decision_step` is what the rollout keeps on the host per policy call per environment
(target <= 150000; SimpleVLA-RL keeps a float32 6x224x224 pixel tensor, ~1.2 MB).

    .venv/bin/python scripts/bench/grpo_step.py [--workers 1] [--env-workers 2] [--max-steps 64]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="", help="policy checkpoint (default: a fresh tiny one)")
    parser.add_argument("--suite", default="libero_object")
    parser.add_argument("--workers", type=int, default=1, help="Ray actor/rollout workers (FSDP ranks)")
    parser.add_argument("--env-workers", type=int, default=2, help="simulator processes per worker")
    parser.add_argument("--n-samples", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=64, help="env steps per episode")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    from verl.trainer.config.compose import compose_config
    from verl.trainer.main_ppo import run_ppo

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint
        if not ckpt:
            from verl.models.openvla_oft.tiny import write_tiny_checkpoint

            ckpt = str(write_tiny_checkpoint(Path(tmp) / "tiny", unnorm_key=args.suite))
        out = Path(tmp) / "run"
        total = args.prompts * args.n_samples
        cfg = compose_config(
            [
                f"actor_rollout_ref.model.path={ckpt}",
                f"data.task_suite_name={args.suite}",
                f"data.task_ids=[{','.join(str(i) for i in range(args.prompts))}]",
                "data.train_init_states=0",
                f"data.n_samples={args.n_samples}",
                f"data.train_batch_size={args.prompts}",
                "data.filter_accuracy=false",
                f"actor_rollout_ref.actor.ppo_mini_batch_size={total}",
                f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={total // args.workers}",
                f"env.max_steps={args.max_steps}",
                f"env.num_workers={args.env_workers}",
                f"trainer.n_gpus_per_node={args.workers}",
                "trainer.total_training_steps=1",
                "trainer.val_before_train=false",
                "trainer.test_freq=-1",
                "trainer.save_freq=-1",
                "trainer.save_last=false",
                "trainer.logger=[jsonl]",
                f"trainer.default_local_dir={out}",
            ]
        )
        run_ppo(cfg)
        m = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    print(
        json.dumps(
            {
                "bench": "grpo_step",
                "rollout_s": round(m["timing/gen"], 3),
                "old_log_prob_s": round(m["timing/old_log_prob"], 3),
                "update_s": round(m["timing/update_actor"], 3),
                "env_steps_per_s": round(m["perf/env_steps_per_s"], 2),
                "bytes_per_decision_step": round(m["rollout/bytes_per_decision_step"]),
                # JPEG decode + resize in the actor, once per step (old log-probs and update share it).
                "images_decoded_per_rank": round(m["perf/images_decoded"]),
                "image_decode_per_s_per_core": round(m["perf/image_decode_per_s_per_core"], 1),
                "trajectories": total,
                "workers": args.workers,
                "env_workers_per_worker": args.env_workers,
                "max_steps": args.max_steps,
            }
        )
    )


if __name__ == "__main__":
    main()
