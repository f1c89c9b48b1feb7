"""OpenVLA's cached sampling on a policy sharded with FSDP2 (one gloo rank, as the GRPO worker's rollout
runs when world_size is 1): `generate` gathers the root unit's parameters as `forward` does, and gives
the unsharded policy's tokens and log-probs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import os, sys, torch, torch.distributed as dist
from tests.models.conftest import make_observations
from verl.models.openvla_oft.configuration import tiny
from verl.models.openvla_oft.tiny import write_tiny_checkpoint
from verl.models.registry import load_policy
from verl.workers.policy_setup import shard_policy

dist.init_process_group("gloo", rank=0, world_size=1)
torch.set_num_threads(1)
path = write_tiny_checkpoint(sys.argv[1], tiny(num_actions_chunk=1), seed=2)
policy = load_policy("openvla", path).eval()
observations = make_observations(3, seed=1)
ref = policy.act(observations, temperature=1.6, row_seeds=[1, 2, 3])
shard_policy(policy, torch.device("cpu"), "fp32", gradient_checkpointing=False)
out = policy.act(observations, temperature=1.6, row_seeds=[1, 2, 3])
assert torch.equal(out.action_tokens, ref.action_tokens), (out.action_tokens, ref.action_tokens)
torch.testing.assert_close(out.log_probs, ref.log_probs, rtol=0, atol=1e-5)
batch = policy.step_batch(out.jpegs, [o["instruction"] for o in observations], None, out.action_tokens)
torch.testing.assert_close(policy.log_prob(batch, 1.6)[0], ref.log_probs, rtol=0, atol=1e-5)
dist.destroy_process_group()
print("ok")
"""


def test_generate_under_fsdp2_equals_unsharded(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(29500 + os.getpid() % 1000),
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "ckpt")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
