"""Pack rollout trajectories into a `DataProto` with fixed shapes.

Every trajectory is padded to the same number of decision steps S (the longest possible episode of
the configured suites), so batches from different ranks and sampling rounds concatenate. Per
trajectory the host keeps, per decision step, the JPEG bytes of each camera image and the A action
tokens (int32), plus masks and scalars: about 10-40 KB per decision step instead of a float32
pixel tensor (1.2 MB).

Tensors:
    action_tokens      int32   [B, S, A]   sampled tokens (action indices, or vocabulary ids)
    rollout_log_probs  float32 [B, S * A]  log-probs at sampling time (for diagnostics)
    response_mask      bool    [B, S * A]  token t is valid iff its action t // dim was executed
    success            float32 [B]         1 if the simulator reported success
    finish_step        int64   [B]         env actions executed after the wait steps
    num_decision_steps int64   [B]         policy calls made in the episode
    proprio            float32 [B, S, p]   normalised proprio per step (only for policies that use it)
Non-tensors: jpegs (per step, per image), instruction, suite, task_id, init_state_id, uid, seed, env_error.
"""

from __future__ import annotations

import numpy as np
import torch

from verl.protocol import DataProto
from verl.workers.rollout.env_rollout import Trajectory


def response_mask(finish_step: torch.Tensor, num_tokens: int, action_dim: int) -> torch.Tensor:
    """[B] executed actions -> bool [B, num_tokens]: token t valid iff t < finish_step * action_dim."""
    t = torch.arange(num_tokens)
    return t[None, :] < (finish_step[:, None] * action_dim)


def trajectories_to_proto(
    trajectories: list[Trajectory], chunk: int, action_dim: int, horizon: int | None, max_decisions: int
) -> DataProto:
    s_max = horizon or max_decisions
    a = chunk * action_dim
    b = len(trajectories)
    tokens = torch.zeros(b, s_max, a, dtype=torch.int32)
    logp = torch.zeros(b, s_max, a, dtype=torch.float32)
    n_steps = torch.zeros(b, dtype=torch.long)
    for i, traj in enumerate(trajectories):
        n = len(traj.action_tokens)
        if n > s_max:
            raise RuntimeError(
                f"episode made {n} policy calls but the batch holds at most {s_max}; "
                "env.max_steps is larger than the horizon the trainer planned for"
            )
        if n:
            tokens[i, :n] = torch.from_numpy(np.stack(traj.action_tokens))
            logp[i, :n] = torch.from_numpy(np.stack(traj.log_probs))
        n_steps[i] = n
    tensors = {}
    p_dim = next((len(t.proprio[0]) for t in trajectories if t.proprio), 0)
    if p_dim:
        proprio = torch.zeros(b, s_max, p_dim)
        for i, t in enumerate(trajectories):
            if t.proprio:
                proprio[i, : len(t.proprio)] = torch.from_numpy(np.stack(t.proprio))
        tensors["proprio"] = proprio
    finish = torch.tensor([t.finish_step for t in trajectories], dtype=torch.long)
    episodes = [t.episode for t in trajectories]
    jpegs = np.empty(b, dtype=object)
    for i, t in enumerate(trajectories):
        jpegs[i] = t.jpegs
    return DataProto.from_dict(
        tensors={
            "action_tokens": tokens,
            "rollout_log_probs": logp.reshape(b, -1),
            "response_mask": response_mask(finish, s_max * a, action_dim),
            "success": torch.tensor([float(t.success) for t in trajectories]),
            "finish_step": finish,
            "num_decision_steps": n_steps,
            **tensors,
        },
        non_tensors={
            "jpegs": jpegs,
            "instruction": [t.instruction for t in trajectories],
            "suite": [e.suite for e in episodes],
            "task_id": [e.task_id for e in episodes],
            "init_state_id": [e.init_state_id for e in episodes],
            "uid": [e.uid for e in episodes],
            "seed": [e.seed for e in episodes],
            "env_error": [t.error or "" if t.failed else "" for t in trajectories],
        },
    )
