"""Workers: the FSDP actor/rollout worker and its parts (closed-loop rollout, PPO actor)."""
