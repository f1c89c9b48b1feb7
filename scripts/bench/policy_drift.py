"""How far a policy moved from a reference one, on the observations where it matters.

    python scripts/bench/policy_drift.py --reference SFT_DIR --policy RL_DIR
    python scripts/bench/policy_drift.py --reference SFT_DIR --noise-std 5.6e-3 --out NOISY_DIR

The first form rolls the reference policy out greedily from held-out initial states (real LIBERO,
the main job's perturbations) and, on every observation it meets, compares both policies' action-token
distributions. It prints one JSON line: {"bench": "policy_drift", "observations", "kl_per_token"
(mean KL(reference || policy) per action token at each temperature), "kl_per_dim" (the same per action
dimension), "argmax_changed" (fraction of tokens whose greedy bin differs), "argmax_changed_per_dim",
"argmax_moved_over_16_bins", "argmax_shift_bins" (mean |greedy bin difference|), "entropy_reference",
"entropy_policy" (per token, at each temperature)}.

The second form writes a control checkpoint: the reference with `std * N(0, 1)` added to every
floating-point weight (generator seeded by --seed). Choosing `std` so that its drift matches an RL
checkpoint's gives a random change of the same size in policy space, to tell what an update's
direction is worth from what its size costs (evaluate it with `scripts/demo.py --checkpoint NOISY_DIR
--extra trainer.val_only=true`).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

TEMPERATURES = (1.0, 1.6)


def drift_stats(reference: torch.Tensor, policy: torch.Tensor, action_dim: int) -> dict:
    """Action logits [N, A, bins] of the two policies on the same N observations -> drift figures.

    Token a of an observation is action dimension a % action_dim (chunk-major tokens).
    """
    if reference.shape != policy.shape or reference.ndim != 3:
        raise ValueError(
            f"logits must both be [N, A, bins], got {list(reference.shape)} and {list(policy.shape)}"
        )
    n, a, _ = reference.shape
    if a % action_dim:
        raise ValueError(
            f"{a} action tokens per observation are not a whole number of {action_dim}-d actions"
        )

    def per_dim(x: torch.Tensor) -> torch.Tensor:  # [N, A] -> mean per action dimension [action_dim]
        return x.reshape(n, a // action_dim, action_dim).mean((0, 1))

    out: dict = {
        "observations": n,
        "kl_per_token": {},
        "kl_per_dim": {},
        "entropy_reference": {},
        "entropy_policy": {},
    }
    for t in TEMPERATURES:
        lp_ref = torch.log_softmax(reference.double() / t, -1)
        lp_pol = torch.log_softmax(policy.double() / t, -1)
        kl = (lp_ref.exp() * (lp_ref - lp_pol)).sum(-1)  # [N, A]
        name = f"T{t:g}"
        out["kl_per_token"][name] = float(kl.mean())
        out["kl_per_dim"][name] = [float(x) for x in per_dim(kl)]
        out["entropy_reference"][name] = float(-(lp_ref.exp() * lp_ref).sum(-1).mean())
        out["entropy_policy"][name] = float(-(lp_pol.exp() * lp_pol).sum(-1).mean())
    shift = (reference.argmax(-1) - policy.argmax(-1)).abs().double()  # [N, A]
    out["argmax_changed"] = float((shift > 0).double().mean())
    out["argmax_changed_per_dim"] = [float(x) for x in per_dim((shift > 0).double())]
    out["argmax_moved_over_16_bins"] = float((shift > 16).double().mean())
    out["argmax_shift_bins"] = float(shift.mean())
    return out


def rollout_logits(
    reference,
    policy,
    suite: str,
    tasks: list[int],
    init_states: list[int],
    seeds: int,
    decisions: int,
    env_cfg,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Greedy reference rollouts; both policies' logits on every observation, and the successes."""
    from verl.envs.base import ResetRequest
    from verl.envs.libero.env import LiberoEnv

    env = LiberoEnv(env_cfg)
    ref_logits, pol_logits, successes = [], [], 0
    try:
        for task in tasks:
            for init in init_states:
                for seed in range(seeds):
                    result = env.reset(ResetRequest(suite, task, init, seed=init * 1000 + seed))
                    if result.failed:
                        raise RuntimeError(f"reset of {suite} task {task} state {init}: {result.error}")
                    for _ in range(decisions):
                        with torch.no_grad():
                            r = reference.action_logits(reference.prepare([result.obs]).batch())[0]
                            p = policy.action_logits(policy.prepare([result.obs]).batch())[0]
                        ref_logits.append(r)
                        pol_logits.append(p)
                        result = env.step_chunk(reference.decode_actions(r.argmax(-1)[None])[0])
                        if result.failed:
                            raise RuntimeError(f"step of {suite} task {task} state {init}: {result.error}")
                        if result.done:
                            successes += int(result.success)
                            break
    finally:
        env.close()
    return torch.stack(ref_logits), torch.stack(pol_logits), successes


def write_noise_copy(reference: Path, out: Path, std: float, seed: int) -> Path:
    """Copy a checkpoint directory, adding std * N(0, 1) to every floating-point weight."""
    from safetensors.torch import load_file, save_file

    if std <= 0:
        raise SystemExit(f"--noise-std must be > 0, got {std}")
    weights = sorted(reference.glob("*.safetensors"))
    if not weights:
        raise SystemExit(f"--reference {reference}: no *.safetensors there")
    if out.exists():
        raise SystemExit(f"--out {out} exists; choose a new directory")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(reference, tmp)
    generator = torch.Generator().manual_seed(seed)
    for path in weights:
        state = load_file(path)
        noisy = {
            k: (v.float() + std * torch.randn(v.shape, generator=generator)).to(v.dtype)
            if v.is_floating_point()
            else v
            for k, v in state.items()
        }
        save_file(noisy, tmp / path.name, metadata={"format": "pt"})
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", required=True, help="reference checkpoint (e.g. the SFT one)")
    p.add_argument("--policy", help="checkpoint to compare with the reference")
    p.add_argument("--noise-std", type=float, help="write a noise control of the reference instead")
    p.add_argument("--out", help="directory of the noise control (--noise-std)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise control")
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--tasks", default="1,2", help="task ids, comma-separated")
    p.add_argument("--init-states", default="40-49", help="held-out initial states, e.g. 40-49")
    p.add_argument("--seeds", type=int, default=1, help="perturbation seeds per initial state")
    p.add_argument("--decisions", type=int, default=20, help="policy calls per episode at most")
    p.add_argument("--max-steps", type=int, default=160, help="env steps per episode")
    p.add_argument("--pos-noise", type=float, default=0.01, help="initial object position noise (m)")
    p.add_argument("--yaw-noise", type=float, default=0.05, help="initial object yaw noise (rad)")
    a = p.parse_args(argv)
    reference = Path(a.reference)
    if a.noise_std is not None:
        if not a.out:
            raise SystemExit("--noise-std needs --out (the directory of the noise control)")
        print(
            json.dumps(
                {
                    "bench": "noise_control",
                    "out": str(write_noise_copy(reference, Path(a.out), a.noise_std, a.seed)),
                    "std": a.noise_std,
                    "seed": a.seed,
                }
            )
        )
        return
    if not a.policy:
        raise SystemExit("give --policy (compare) or --noise-std with --out (write a noise control)")

    from verl.envs.libero.config import PerturbationConfig, libero_env_config
    from verl.models.openvla_oft.policy import OpenVLAOFTPolicy
    from verl.trainer.config.validate import parse_id_ranges

    torch.set_num_threads(1)
    ref = OpenVLAOFTPolicy.from_pretrained(reference)
    pol = OpenVLAOFTPolicy.from_pretrained(a.policy)
    env_cfg = libero_env_config(
        suite=a.suite,
        max_steps=a.max_steps,
        perturbation=PerturbationConfig(pos_noise_m=a.pos_noise, yaw_noise_rad=a.yaw_noise),
    )
    tasks = [int(t) for t in a.tasks.split(",")]
    r, q, successes = rollout_logits(
        ref,
        pol,
        a.suite,
        tasks,
        parse_id_ranges(a.init_states, "--init-states"),
        a.seeds,
        a.decisions,
        env_cfg,
    )
    stats = drift_stats(r, q, ref.config.action_dim)
    print(json.dumps({"bench": "policy_drift", "reference_greedy_successes": successes, **stats}))


if __name__ == "__main__":
    main()
