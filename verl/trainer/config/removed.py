"""Config keys that were removed, and what replaces them.

Hydra rejects an unknown key with "Key 'x' is not in struct"; for a key that used to exist (or that
SimpleVLA-RL's scripts pass) the user deserves the replacement instead. Overrides are checked before
Hydra composes the config.
"""

from __future__ import annotations

from collections.abc import Iterable

from verl.utils.config_values import ConfigError

# Removed key (or section prefix) -> why, and what to use instead.
REMOVED_KEYS = {
    "algorithm.kl_ctrl": (
        "a KL penalty in the reward is not implemented (SimpleVLA-RL trains with kl_coef=0, which is what "
        "this trainer does); for a KL-to-reference term use actor_rollout_ref.actor.kl_loss_coef and "
        "actor_rollout_ref.actor.kl_loss_type"
    ),
}


def check_removed_overrides(overrides: Iterable[str]) -> None:
    """Raise `ConfigError` naming the replacement when an override sets a removed key."""
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0].strip()
        for removed, why in REMOVED_KEYS.items():
            if key == removed or key.startswith(removed + "."):
                raise ConfigError(f"{key} was removed: {why}")
