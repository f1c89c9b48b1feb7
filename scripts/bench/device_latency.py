"""A policy stand-in for rollout benchmarks: what a GPU node's policy costs its host CPU.

On a GPU node the policy's forward runs on the device; the rollout process's CPU only prepares the
inputs (JPEG round trip, resizing, tokenising) and then waits. `DeviceLatencyPolicy` does exactly
that on a CPU machine: the real input preparation of a real (tiny) policy, then a sleep of the
modelled device time `t(batch) = a + b * batch`, during which the CPU is free for the simulators. Its
actions are pre-recorded: the chunk of (episode seed, decision step) is drawn from a fixed
distribution seeded by that pair, so every configuration of a benchmark steps the same episodes
with the same actions, and a run without any policy (the simulator-only limit) can replay them.

Benchmarks only: it produces no meaningful action tokens or log-probs (zeros).

Default device model, OpenVLA-OFT 7B on one A100/A800-class GPU, bf16:
- a + b = 112 ms: the latency of one action chunk with two camera images and proprio at batch 1 on
  an A100, as published in the OpenVLA-OFT paper (Kim, Finn, Liang 2025, arXiv 2502.19645, LIBERO
  throughput/latency table: 71.4 Hz, 0.112 s; one image without proprio: 0.073 s).
- b = 56 ms per observation: the forward's arithmetic at 50% of the GPU's 312 TFLOP/s bf16 peak.
  One observation is ~600 tokens through the 6.7 B-parameter Llama-2 (2 x 256 image patches, the
  prompt, proprio, 56 action tokens): 2 x 6.7e9 x 600 = 8.1 TFLOP, plus ~0.7 TFLOP for the two
  vision towers on both images, ~8.8 TFLOP in all, i.e. 56 ms. No batched latency is published;
  this slope is an estimate, and `--device-a-ms` / `--device-b-ms` set other values.
- a = 112 - 56 = 56 ms: what a call costs beyond the per-observation arithmetic (kernel launches,
  memory-bound weight reads, host-device copies).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from verl.workers.rollout.env_rollout import sampling_seed

DEFAULT_A_MS = 56.0
DEFAULT_B_MS = 56.0


@dataclass(frozen=True)
class DeviceModel:
    """Modelled device time of one batched policy forward: `a_ms + b_ms * batch` milliseconds."""

    a_ms: float = DEFAULT_A_MS
    b_ms: float = DEFAULT_B_MS

    def __post_init__(self) -> None:
        if self.a_ms < 0 or self.b_ms < 0:
            raise ValueError(f"device latency a={self.a_ms} ms, b={self.b_ms} ms; allowed: numbers >= 0")

    def seconds(self, batch: int) -> float:
        if batch < 1:
            raise ValueError(f"batch={batch}; allowed: an integer >= 1")
        return (self.a_ms + self.b_ms * batch) / 1000.0


def recorded_chunk(seed: int, step: int, chunk: int, action_dim: int) -> np.ndarray:
    """The pre-recorded action chunk [chunk, action_dim] (policy convention) of decision step `step` of
    the episode with seed `seed`: small end-effector motions in [-0.5, 0.5], the gripper 0 or 1."""
    rng = np.random.default_rng(sampling_seed(seed, step))
    motion = rng.uniform(-0.5, 0.5, (chunk, action_dim - 1))
    gripper = rng.integers(0, 2, (chunk, 1))
    return np.concatenate([motion, gripper], axis=1).astype(np.float32)


class DeviceLatencyPolicy:
    """The `act` callable of `run_episodes`: real input preparation, modelled device time, recorded actions.

    `prepare(observations)` is a real policy's input preparation (e.g. `OpenVLAOFTPolicy.prepare`), or
    None for no policy work at all (the simulator-only limit, with `device` of zero latency). `sleep`
    is the wait (time.sleep releases the CPU); tests pass a recorder.
    """

    def __init__(
        self,
        prepare: Callable[[list[dict]], object] | None,
        device: DeviceModel,
        chunk: int,
        action_dim: int,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.prepare = prepare
        self.device = device
        self.chunk = chunk
        self.action_dim = action_dim
        self.sleep = sleep
        self.calls = 0
        self.observations = 0
        self.device_s = 0.0  # modelled device time slept
        self.prepare_cpu_s = 0.0  # CPU time of this process spent preparing inputs

    def __call__(self, observations: list[dict], keys: list[tuple[int, int]]) -> tuple:
        if len(observations) != len(keys):
            raise ValueError(f"{len(observations)} observations for {len(keys)} keys")
        jpegs: list = [[] for _ in observations]
        proprio = None
        if self.prepare is not None:
            cpu = time.process_time()
            inputs = self.prepare(observations)
            self.prepare_cpu_s += time.process_time() - cpu
            jpegs = inputs.jpegs
            proprio = inputs.proprio.numpy() if inputs.proprio is not None else None
        wait = self.device.seconds(len(observations)) if self.device.a_ms or self.device.b_ms else 0.0
        if wait:
            self.sleep(wait)
        self.calls += 1
        self.observations += len(observations)
        self.device_s += wait
        actions = np.stack([recorded_chunk(seed, step, self.chunk, self.action_dim) for seed, step in keys])
        n_tokens = self.chunk * self.action_dim
        tokens = np.zeros((len(keys), n_tokens), dtype=np.int32)
        log_probs = np.zeros((len(keys), n_tokens), dtype=np.float32)
        return tokens, log_probs, actions, jpegs, proprio
