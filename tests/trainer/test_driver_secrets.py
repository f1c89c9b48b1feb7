"""The WandB key reaches the driver only: not the Ray workers, not the processes they start, not the
console log, and Ray's authentication is left as Ray sets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [pytest.mark.ray]

FAKE = "fake-wandb-key-7f3a9c1e5b"

DRIVER = textwrap.dedent(
    """
    import logging, os, subprocess, sys
    import ray
    from verl.trainer.ray_session import run_driver

    @ray.remote(num_cpus=0)
    class Probe:
        def env(self):
            child = subprocess.run(
                [sys.executable, "-c", "import os; print(os.environ.get('WANDB_API_KEY', ''))"],
                capture_output=True, text=True,
            ).stdout.strip()
            return {
                "worker": os.environ.get("WANDB_API_KEY", ""),
                "child": child,
                "align_token": os.environ.get("MY_SERVICE_TOKEN", ""),
                "tokenizers": os.environ.get("TOKENIZERS_PARALLELISM", ""),
            }

    class Driver:
        def __init__(self):
            self.probe = Probe.remote()
        def fit(self):
            seen = ray.get(self.probe.env.remote())
            print("WORKER", repr(seen["worker"]), "CHILD", repr(seen["child"]), flush=True)
            print("ALIGN_TOKEN", repr(seen["align_token"]), "TOKENIZERS", seen["tokenizers"], flush=True)
            print("DRIVER_HAS_KEY", os.environ.get("WANDB_API_KEY") == sys.argv[2], flush=True)
            logging.getLogger("verl.driver").warning("the key is %s", os.environ["WANDB_API_KEY"])
        def shutdown(self, graceful=True):
            ray.kill(self.probe)

    run_driver(Driver, sys.argv[1], None)
    """
)


def test_wandb_key_stays_in_the_driver(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    align = tmp_path / "align.json"
    align.write_text(json.dumps({"env_vars": {"WANDB_API_KEY": FAKE, "MY_SERVICE_TOKEN": FAKE + "x"}}))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": "", "WANDB_API_KEY": FAKE}
    proc = subprocess.run(
        [sys.executable, str(script), str(align), FAKE],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "WORKER '' CHILD ''" in log, log[-4000:]
    assert "DRIVER_HAS_KEY True" in log, log[-4000:]
    # Any secret-named variable of align.json stays with the driver too; ordinary ones reach workers.
    assert "ALIGN_TOKEN '' TOKENIZERS true" in log, log[-4000:]
    assert "the key is ***" in log and FAKE not in log
