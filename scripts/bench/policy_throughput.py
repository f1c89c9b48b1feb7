"""Throughput of the tiny OpenVLA-OFT policy's `act` on CPU: one JSON line per batch size.

    python scripts/bench/policy_throughput.py [--checkpoint DIR] [--batch-sizes 1 8 32] [--repeats 5]

Each line: {"bench": "policy_throughput", "batch", "latency_ms" (median act() call: image
pipeline + forward + sampling), "actions_per_s" (batch * chunk / latency), "peak_rss_mib"}.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time

import numpy as np
import torch

from verl.models.openvla_oft.policy import OpenVLAOFTPolicy
from verl.models.openvla_oft.tiny import write_tiny_checkpoint


def observations(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "images": {"agentview": rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)},
            "instruction": "open the top drawer",
        }
        for _ in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="checkpoint directory (default: a fresh tiny checkpoint)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed calls per batch size (after one warm-up)"
    )
    # 1 by default: on a 2-core machine shared with env workers, 2 OpenMP threads spin-wait on each
    # small op (measured: batch 1 at ~15 ms with 1 thread vs ~0.5-0.9 s with 2 under load 6)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        policy = OpenVLAOFTPolicy.from_pretrained(args.checkpoint or write_tiny_checkpoint(tmp))
        generator = torch.Generator().manual_seed(0)
        for batch in args.batch_sizes:
            obs = observations(batch, seed=batch)
            policy.act(obs, temperature=1.0, generator=generator)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                policy.act(obs, temperature=1.0, generator=generator)
                times.append(time.perf_counter() - start)
            latency = statistics.median(times)
            record = {
                "bench": "policy_throughput",
                "batch": batch,
                "latency_ms": round(latency * 1000, 2),
                "actions_per_s": round(batch * policy.config.num_actions_chunk / latency, 1),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
