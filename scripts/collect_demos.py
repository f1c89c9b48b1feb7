"""Collect scripted-expert demonstrations in the official LIBERO HDF5 format (one file per task).

The expert acts closed loop (one action per step) through the env pool; only successful episodes
are written. Files are `<out-dir>/<task name>_demo.hdf5`, readable by
verl.utils.dataset.libero_hdf5.read_episodes and by tools written for the official files. Images are
stored as the simulator renders them (upside down, like the official files) at --camera-size
(default 256, the resolution OpenVLA-OFT's regenerated LIBERO data uses; the official raw files
are 128). Re-running resumes: initial states that already have a demo are skipped.

    python scripts/collect_demos.py --suite libero_object --tasks 0-9 --demos-per-task 1 --out-dir data/libero_object_expert

ManiSkill (--env maniskill; the cube-task expert of verl/envs/maniskill/expert.py): the same layout, one
file per task named after the ManiSkill task, images upside down as in LIBERO's files (the reader
turns them upright), `state` = the robot's joint positions; `--init-states` are episode seeds.

    python scripts/collect_demos.py --env maniskill --tasks 0,1,2 --init-states 0-99 --demos-per-task 10 --out-dir data/maniskill_expert
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np


def file_attrs(suite: str, task_id: int, camera_size: int) -> dict[str, object]:
    """Attributes of `data`, as the official files carry them."""
    from verl.envs.libero import suites

    bddl = suites.bddl_file(suite, task_id)
    with open(bddl, encoding="utf-8") as f:
        content = f.read()
    language = suites.task_language(suite, task_id)
    env_kwargs = {
        "bddl_file_name": bddl,
        "camera_heights": camera_size,
        "camera_widths": camera_size,
        "camera_names": ["agentview", "robot0_eye_in_hand"],
        "control_freq": 20,
        "controller": "OSC_POSE",
    }
    return {
        "env_name": "Libero_Tabletop_Manipulation",
        "problem_info": {
            "problem_name": "libero_tabletop_manipulation",
            "domain_name": "robosuite",
            "language_instruction": language,
        },
        "env_args": {
            "type": 1,
            "env_name": "Libero_Tabletop_Manipulation",
            "bddl_file": bddl,
            "env_kwargs": env_kwargs,
        },
        "bddl_file_name": bddl,
        "bddl_file_content": content,
        "macros_image_convention": "opengl",
        "suite": suite,
        "task_id": task_id,
        "collected_by": "verl scripted pick-and-place expert (closed loop)",
    }


def demo_steps(episode) -> list:
    """ExpertEpisode (recorded) -> DemoStep list in LIBERO's conventions."""
    from verl.envs.libero.convert import policy_to_libero_actions
    from verl.utils.dataset.libero_hdf5 import DemoStep

    steps = []
    libero_actions = policy_to_libero_actions(np.stack(episode.actions))
    for obs, action in zip(episode.observations, libero_actions):
        p = obs["privileged"]
        steps.append(
            DemoStep(
                action=action,
                state=p["sim_state"],
                agentview=obs["images"]["agentview"][::-1, ::-1],  # back to the simulator's orientation
                wrist=obs["images"]["wrist"][::-1, ::-1],
                eef_pos=p["eef_pos"],
                eef_quat=p["robot_eef_quat"],
                gripper_qpos=p["gripper_qpos"],
                joint_pos=p["joint_pos"],
            )
        )
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="libero", choices=("libero", "maniskill"))
    parser.add_argument("--suite", default="libero_object", help="libero_object or libero_spatial")
    parser.add_argument("--tasks", default="0-9", help="task ids, e.g. 0,1,2 or 0-9")
    parser.add_argument("--init-states", default="0-49", help="initial states to try, in order")
    parser.add_argument("--demos-per-task", type=int, default=1, help="1 = the 'traj1' setting")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--camera-size", type=int, default=None, help="default: 256 (LIBERO), 224 (ManiSkill)"
    )
    parser.add_argument(
        "--hand-camera",
        action="store_true",
        help="ManiSkill: also record the hand camera (robot panda_wristcam, as env.maniskill.use_hand_camera); "
        "without it the file's eye_in_hand_rgb frames are all zero and the robot is the plain Panda",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.demos_per_task < 1:
        parser.error(f"--demos-per-task must be >= 1, got {args.demos_per_task}")
    if args.env == "maniskill":
        maniskill_main(args)
        return
    args.camera_size = args.camera_size or 256

    from tqdm import tqdm

    from verl.envs.libero import suites
    from verl.envs.libero.config import libero_env_config
    from verl.envs.libero.expert_rollout import ExpertJob, parse_ids, run_expert
    from verl.envs.pool import EnvPool
    from verl.utils.dataset.libero_hdf5 import LiberoDemoWriter, demo_file_name

    tasks, inits = parse_ids(args.tasks), parse_ids(args.init_states)
    writers = {
        t: LiberoDemoWriter(
            os.path.join(args.out_dir, demo_file_name(suites.task_name(args.suite, t))),
            file_attrs(args.suite, t, args.camera_size),
        )
        for t in tasks
    }
    tried = {t: set(writers[t].done_init_state_ids) for t in tasks}
    cfg = libero_env_config(
        suite=args.suite,
        camera_size=args.camera_size,
        use_wrist_image=True,
        render_mode="chunk",  # chunks of one action: an image every step
        privileged_obs=True,
        num_workers=args.workers,
    )
    need = {t: max(args.demos_per_task - writers[t].num_demos, 0) for t in tasks}
    bar = tqdm(total=sum(need.values()), desc=f"{args.suite} demos", unit="demo")
    try:
        with EnvPool(cfg, num_workers=args.workers) as pool:
            while True:
                # One round: per task, as many untried initial states as demos are still missing.
                jobs = []
                for t in tasks:
                    untried = [i for i in inits if i not in tried[t]][: need[t]]
                    tried[t].update(untried)
                    jobs += [ExpertJob(args.suite, t, i, args.seed) for i in untried]
                if not jobs:
                    break
                for ep in run_expert(pool, jobs, chunk=1, record=True):
                    t = ep.job.task_id
                    if ep.success and need[t] > 0:
                        writers[t].add_demo(demo_steps(ep), init_state_id=ep.job.init_state_id)
                        need[t] -= 1
                        bar.update(1)
                    elif not ep.success:
                        bar.write(
                            f"task {t} init {ep.job.init_state_id}: failed ({ep.error or 'not solved'})"
                        )
    finally:
        bar.close()
        for w in writers.values():
            w.close()
    summary = {"bench": "collect_demos", "suite": args.suite, "out_dir": args.out_dir}
    summary["demos"] = {t: args.demos_per_task - need[t] for t in tasks}
    print(json.dumps(summary))


def maniskill_steps(episode) -> list:
    """A recorded ManiSkill expert episode -> DemoStep list (LIBERO's action and image conventions)."""
    from verl.envs.maniskill.convert import policy_to_maniskill_actions
    from verl.utils.dataset.libero_hdf5 import DemoStep

    actions = policy_to_maniskill_actions(np.stack(episode.actions)).astype(np.float64)
    actions[:, -1] = -actions[:, -1]  # LIBERO's files: -1 open, +1 close
    steps = []
    no_wrist = np.zeros_like(episode.observations[0]["images"]["base_camera"])
    for obs, action in zip(episode.observations, actions):
        p = obs["privileged"]
        w, x, y, z = (float(v) for v in p["tcp_quat"])
        if w < 0:  # the sign the env's proprio uses (rotation angle <= pi)
            w, x, y, z = -w, -x, -y, -z
        images = obs["images"]
        steps.append(
            DemoStep(
                action=action,
                state=p["qpos"].astype(np.float64),
                agentview=images["base_camera"][::-1, ::-1],  # the reader turns images upright
                wrist=images["hand_camera"][::-1, ::-1] if "hand_camera" in images else no_wrist,
                eef_pos=p["tcp_pos"],
                eef_quat=np.array([x, y, z, w]),
                gripper_qpos=p["qpos"][-2:],
                joint_pos=p["qpos"][:7],
            )
        )
    return steps


def maniskill_main(args: argparse.Namespace) -> None:
    from verl.envs.libero.expert_rollout import parse_ids
    from verl.envs.maniskill import SUITE, maniskill_env_config, task
    from verl.envs.maniskill.expert_rollout import run_expert
    from verl.envs.pool import EnvPool
    from verl.utils.dataset.libero_hdf5 import LiberoDemoWriter, demo_file_name

    size = args.camera_size or 224
    tasks, seeds = parse_ids(args.tasks), parse_ids(args.init_states)
    writers = {}
    for t in tasks:
        attrs = {
            "env_name": task(t).env_id,
            "problem_info": {"language_instruction": task(t).instruction},
            "env_args": {
                "env_name": task(t).env_id,
                "control_mode": "pd_ee_delta_pose",
                "camera_size": size,
                "hand_camera": args.hand_camera,
            },
            "macros_image_convention": "opengl",
            "suite": SUITE,
            "task_id": t,
            "collected_by": "verl scripted ManiSkill expert (privileged state, closed loop)",
        }
        writers[t] = LiberoDemoWriter(os.path.join(args.out_dir, demo_file_name(task(t).env_id)), attrs)
    cfg = maniskill_env_config(
        camera_size=size,
        use_hand_camera=args.hand_camera,
        render_mode="chunk",
        privileged_obs=True,
        num_workers=args.workers,
    )
    need = {t: max(args.demos_per_task - writers[t].num_demos, 0) for t in tasks}
    tried = {t: set(writers[t].done_init_state_ids) for t in tasks}
    try:
        with EnvPool(cfg, num_workers=args.workers) as pool:
            while True:
                jobs = []
                for t in tasks:
                    untried = [s for s in seeds if s not in tried[t]][: need[t]]
                    tried[t].update(untried)
                    jobs += [(t, s) for s in untried]
                if not jobs:
                    break
                for ep in run_expert(pool, jobs, record=True):
                    if ep.success and need[ep.task_id] > 0:
                        writers[ep.task_id].add_demo(maniskill_steps(ep), init_state_id=ep.seed)
                        need[ep.task_id] -= 1
                    elif not ep.success:
                        print(
                            f"task {ep.task_id} seed {ep.seed}: failed ({ep.error or 'not solved'})",
                            flush=True,
                        )
    finally:
        for w in writers.values():
            w.close()
    demos = {t: args.demos_per_task - need[t] for t in tasks}
    print(json.dumps({"bench": "collect_demos", "env": "maniskill", "out_dir": args.out_dir, "demos": demos}))


if __name__ == "__main__":
    main()
