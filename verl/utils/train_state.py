"""What an exact resume needs besides the released-layout weights: the sharded model and optimiser
state (torch.distributed.checkpoint) and each rank's scheduler, RNG and extra state.

Used by every FSDP worker (GRPO and SFT); every rank calls these functions.
"""

from __future__ import annotations

from pathlib import Path

from verl.utils import checkpoint as ckpt
from verl.utils.safe_load import load_extra_state, safe_dcp_reader, save_extra_state


def save_train_state(out: Path, rank: int, model, optimizer, scheduler, extra: dict | None = None) -> None:
    """What an exact resume needs besides the weights: the sharded model and optimiser state
    (`<out>/train_state`, torch.distributed.checkpoint, LoRA adapters included) and this rank's
    scheduler, RNG and `extra` state (`<out>/extra_state_rank<k>.pt`). Every rank calls it."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    state = {
        "model": get_model_state_dict(model),
        "optimizer": get_optimizer_state_dict(model, optimizer),
    }
    dcp.save(state, checkpoint_id=str(out / "train_state"))
    save_extra_state(
        {"scheduler": scheduler.state_dict(), "rng": ckpt.rng_state(), **(extra or {})},
        out / f"extra_state_rank{rank}.pt",
    )


def load_train_state(out: Path, rank: int, model, optimizer, scheduler) -> dict:
    """Restore what `save_train_state` wrote; returns this rank's extra-state dict."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    state = {
        "model": get_model_state_dict(model),
        "optimizer": get_optimizer_state_dict(model, optimizer),
    }
    # Parameters that never receive a gradient (vision blocks after the feature layer) have no
    # optimiser state in the checkpoint; they keep the fresh state.
    # The extra state is checked first: a foreign file stops the resume before anything is applied.
    extra = load_extra_state(out / f"extra_state_rank{rank}.pt")
    dcp.load(
        state,
        storage_reader=safe_dcp_reader(out / "train_state"),
        planner=DefaultLoadPlanner(allow_partial_load=True),
    )
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    ckpt.set_rng_state(extra["rng"])
    return extra
