"""Host memory of one node of a GRPO run, item by item, from the launch settings: the plan.

Resident for the whole run (per node):
- simulators: env.num_workers processes per rank, `sim_rss` each (LIBERO ~1172 MiB);
- workers: one Ray actor per rank (python, torch, CUDA context; on CPU also the model);
- ray: the Ray daemons (GCS, raylet, dashboard agents), Ray's other workers (idle pooled workers, the
  progress counter) and the driver process without batches.

One RL step moves trajectories. A trajectory has `decision_steps` policy calls, each keeping
`heavy_per_decision` bytes (the JPEG images) that only the actor reads, and `light_per_decision` bytes
of tensors (action tokens, log-probs, mask, proprio) that the driver also reads (advantages, metrics).
The trajectories of a step are the kept groups of every sampling round: `trajectories_per_round` per
round (train_batch_size x oversample_factor x n_samples), kept `trajectories_per_step`
(train_batch_size x n_samples). At the step's peak the node holds, by data flow:

- "round_trip" (every field through the driver, the data flow before the reduction): the last round's
  output in the workers and in the object store (the call's return values), the driver's copy of it
  plus the groups kept in earlier rounds (the driver's index and concat copy tensors but share the
  images' bytes objects); then the kept batch serialised into the object store twice (old log-probs,
  update) and deserialised by the workers twice (the decode cache keeps the first copy's images);
- "heavy_stays" (after it): each worker puts every trajectory's images into the object store once and
  returns only the light fields; the driver puts each rank's light part into the store once for both
  calls; the training rank fetches its images from the store once per step.

Plus, in the workers, the step's decoded images (the actor's decode cache, `decoded_per_decision`
bytes per decision step). Checkpoints and start-up are phases of their own: rank 0 gathers the full
fp32 state dict on the host (and a clone of it) to save it; at start-up every rank reads the full
fp32 model on the host before `fully_shard` moves its shard to the device.

Plans count the worst case: every episode runs to `decision_steps`, the last sampling round arrives
when the step lacks one group. Everything here is integer arithmetic; `scripts/bench/host_memory.py`
prints it for the launch recipe and compares it with a measured run.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 2**20
GIB = 2**30
DATAFLOWS = ("round_trip", "heavy_stays")
PHASES = ("step", "checkpoint", "startup")
RESIDENT = ("simulators", "workers", "driver", "ray_daemons", "ray_other")


@dataclass(frozen=True)
class HostPlanSettings:
    ranks_per_node: int  # trainer.n_gpus_per_node
    nodes: int  # trainer.nnodes
    env_workers_per_rank: int  # env.num_workers
    trajectories_per_round: int  # train_batch_size x oversample_factor x n_samples
    trajectories_per_step: int  # train_batch_size x n_samples
    sampling_rounds: int  # rounds in the step (1 = the first round kept enough groups)
    decision_steps: int  # policy calls of the longest episode: ceil(env.max_steps / chunk)
    heavy_per_decision: int  # bytes only the actor reads: the step's JPEG images
    light_per_decision: int  # bytes of per-step tensors the driver reads too (tokens, log-probs, mask)
    driver_added_per_decision: int  # tensors the driver adds (old log-probs, entropy, rewards, advantages)
    decoded_per_decision: int  # the actor's decoded images of one decision step (n_img x S x S x 3)
    params: int  # model parameters (checkpoint and start-up phases)
    sim_rss: int = 1172 * MIB  # one simulator process (LIBERO, rendering)
    worker_rss: int = 4 * GIB  # one worker process without batches
    driver_rss: int = 1 * GIB  # the driver process without batches
    ray_daemons_rss: int = 370 * MIB  # GCS, raylet and agents of one node
    ray_other_rss: int = 1 * GIB  # Ray's idle pooled workers and small actors of one node
    dataflow: str = "round_trip"

    def __post_init__(self) -> None:
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow={self.dataflow!r}: allowed values: {', '.join(DATAFLOWS)}")
        if self.sampling_rounds < 1:
            raise ValueError(f"sampling_rounds must be >= 1, got {self.sampling_rounds}")


def kept_before_last_round(s: HostPlanSettings) -> int:
    """Trajectories the driver holds when the last round arrives: at most one group short of the step
    (worst case), and never more than the earlier rounds produced."""
    if s.sampling_rounds == 1:
        return 0
    return min(s.trajectories_per_step, (s.sampling_rounds - 1) * s.trajectories_per_round)


def step_items(s: HostPlanSettings) -> dict[str, int]:
    """Bytes per item on the node that runs the driver, at the step's peak (the actor update)."""
    heavy = s.heavy_per_decision * s.decision_steps  # per trajectory
    light = s.light_per_decision * s.decision_steps
    added = s.driver_added_per_decision * s.decision_steps
    share = 1 / s.nodes  # this node's part of what the workers produce and train on
    kept, rnd, step = kept_before_last_round(s), s.trajectories_per_round, s.trajectories_per_step
    items = {
        "simulators": s.ranks_per_node * s.env_workers_per_rank * s.sim_rss,
        "workers": s.ranks_per_node * s.worker_rss,
        "driver": s.driver_rss,
        "ray_daemons": s.ray_daemons_rss,
        "ray_other": s.ray_other_rss,
        "decoded_images": int(step * share * s.decoded_per_decision * s.decision_steps),
    }
    if s.dataflow == "round_trip":
        # Rollout return: the round in the workers, in the store, in the driver; plus the kept groups.
        rollout = {
            "trajectories_workers": int(rnd * share) * (heavy + light),
            "trajectories_object_store": int(rnd * share) * (heavy + light),
            "trajectories_driver": (rnd + kept) * (heavy + light),
        }
        # Update: the driver's batch, its two serialisations (log-probs, update; the first is freed when
        # the call returns), the workers' two copies (the decode cache keys the first copy's bytes).
        update = {
            "trajectories_workers": int(step * share) * (2 * heavy + light + added),
            "trajectories_object_store": step * (heavy + light + added),
            "trajectories_driver": step * (heavy + light + added),
        }
    else:
        rollout = {
            "trajectories_workers": int(rnd * share) * light,
            "trajectories_object_store": int((rnd + kept) * share) * heavy,
            "trajectories_driver": (rnd + kept) * light,
        }
        update = {
            "trajectories_workers": int(step * share) * (heavy + light + added),
            "trajectories_object_store": int(step * share) * heavy + step * (light + added),
            "trajectories_driver": step * (light + added),
        }
    # The step's peak is the larger of the two moments.
    peak = rollout if sum(rollout.values()) > sum(update.values()) else update
    items.update(peak)
    return items


def phase_items(s: HostPlanSettings, phase: str) -> dict[str, int]:
    """Bytes per item on the driver's node in `phase` (one of PHASES)."""
    if phase not in PHASES:
        raise ValueError(f"phase={phase!r}: allowed values: {', '.join(PHASES)}")
    if phase == "step":
        return step_items(s)
    resident = {k: v for k, v in step_items(s).items() if k in RESIDENT}
    if phase == "checkpoint":
        # Rank 0's full fp32 state dict on the host, and the shard dicts `save_state_dict` clones it
        # into before writing (README, "The plan against measurement (CPU)"): two fp32 copies.
        return {**resident, "checkpoint_state_dict": 2 * 4 * s.params}
    # Start-up: every rank reads the full fp32 model on the host (no simulators yet).
    return {**resident, "simulators": 0, "startup_full_models": s.ranks_per_node * 4 * s.params}


def total(items: dict[str, int]) -> int:
    return sum(items.values())


def peak_phase(s: HostPlanSettings) -> tuple[str, int]:
    """(phase, bytes) of the largest phase total."""
    totals = {p: total(phase_items(s, p)) for p in PHASES}
    phase = max(totals, key=totals.__getitem__)
    return phase, totals[phase]
