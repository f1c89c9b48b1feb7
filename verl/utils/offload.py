"""Optimiser state between host and device (`actor.fsdp_config.optimizer_offload`).

AdamW's moments (twice the trainable parameters in fp32, sharded) are only read by the optimiser
step, so outside the update phase they can live in host memory. The state is created lazily on the
parameters' device by the first step; the worker moves it to the host after each update and back
before the next. AdamW's `step` counters stay where they are (a CPU scalar unless capturable).
"""

from __future__ import annotations

import torch


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device | str) -> int:
    """Move every tensor of the optimiser state (DTensor shards included) to `device`; returns bytes moved."""
    moved = 0
    for state in optimizer.state.values():
        for key, value in state.items():
            if key == "step" or not isinstance(value, torch.Tensor):
                continue
            local = value.to_local() if hasattr(value, "to_local") else value
            moved += local.numel() * local.element_size()
            state[key] = value.to(device, non_blocking=True)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return moved
