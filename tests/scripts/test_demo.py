"""The main job's script: its default configuration is a valid GRPO config, and its statistics."""

import importlib.util
from pathlib import Path

import pytest

from verl.trainer.config.compose import compose_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_run_composes_to_a_valid_config(demo, tmp_path):
    args = demo.parse_args([])
    cfg = compose_config(demo.overrides(args, tmp_path / "run"))
    assert (Path(cfg.actor_rollout_ref.model.path) / "config.json").is_file()  # the shipped checkpoint
    assert cfg.actor_rollout_ref.rollout.temperature == 1.6
    assert (cfg.actor_rollout_ref.actor.clip_ratio_low, cfg.actor_rollout_ref.actor.clip_ratio_high) == (
        0.2,
        0.28,
    )
    assert cfg.data.filter_accuracy and cfg.trainer.val_before_train
    assert (cfg.data.refill, cfg.data.max_sampling_rounds) == (args.refill, args.max_rounds)
    assert cfg.actor_rollout_ref.actor.optim.lr_warmup_steps == args.warmup
    # Held-out evaluation: at least 100 episodes, disjoint from the training initial states.
    tasks = len(args.tasks.split(","))
    assert tasks * 10 * cfg.data.val_n_samples >= 100
    assert (cfg.data.train_init_states, cfg.data.val_init_states) == ("0-39", "40-49")
    assert (
        cfg.actor_rollout_ref.actor.ppo_mini_batch_size * args.mini_batches == args.prompts * args.n_samples
    )


def test_bad_mini_batch_split_is_refused(demo, tmp_path):
    with pytest.raises(SystemExit, match="--mini-batches 3 must divide"):
        demo.overrides(demo.parse_args(["--mini-batches", "3"]), tmp_path)


def test_bad_refill_is_refused(demo, capsys):
    with pytest.raises(SystemExit):
        demo.parse_args(["--refill", "some"])
    assert "--refill" in capsys.readouterr().err


def test_wilson_interval(demo):
    lo, hi = demo.wilson(48, 100)
    assert round(lo, 3) == 0.385 and round(hi, 3) == 0.577
    assert demo.wilson(0, 0) == (0.0, 0.0)
    assert demo.wilson(0, 10)[0] == 0.0


def test_report_of_a_stopped_run(demo, tmp_path, capsys):
    """--report-only rebuilds the table, the curve with its intervals, the plot and the JSON line from the
    files a run leaves behind, also when it was stopped before its last step."""
    import json

    out = tmp_path / "run"
    out.mkdir()
    episodes = []
    for step, successes in ((0, 48), (10, 14), (20, 70)):
        for i in range(100):
            episodes.append(
                {
                    "step": step,
                    "task_id": i % 2,
                    "success": i < successes,
                    "video": f"v{step}.mp4" if i == 0 else "",
                }
            )
    (out / "val_episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    metrics = [{"step": s, "time": 1000.0 + 60 * s, "train_verify_score/all": 0.1} for s in range(1, 21)]
    (out / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    run_args = {"suite": "libero_object", "tasks": "1,2", "seed": 7, "temperature": 1.0}
    host = {"cpu": "test cpu", "cpu_capability": "AVX2", "cores": 2, "torch": "2.14.1"}
    (out / "run_started.json").write_text(json.dumps({"time": 900.0, "args": run_args, "host": host}))

    demo.main(["--out", str(out), "--report-only", "--json"])
    printed = capsys.readouterr().out
    line = json.loads(printed.strip().splitlines()[-1])
    assert line["grpo_steps"] == 20 and line["sft_success"] == 0.48 and line["rl_success"] == 0.7
    assert line["improvement_points"] == 22.0 and line["seed"] == 7 and line["temperature"] == 1.0
    assert line["host"] == host  # the machine the run ran on, not the one making the report
    assert [c["step"] for c in line["curve"]] == [0, 10, 20]
    assert (
        line["curve"][1]["success"] == 0.14
        and line["curve"][1]["ci95"][0] < 0.14 < line["curve"][1]["ci95"][1]
    )
    # Per task: 70 successes among episodes 0-69, task i % 2: 35 of 50 for each task.
    assert line["curve"][2]["per_task"]["0"]["success"] == 0.7
    assert line["curve"][0]["per_task"]["1"] == {"success": 0.48, "ci95": [0.348, 0.6149], "episodes": 50}
    assert line["wall_time_s"] == 60 * 20 + 100  # start marker to the last metrics record
    assert "| after GRPO | 10 | 100 | 14.0% |" in printed  # every evaluation is a row
    assert (out / "success_vs_step.png").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["after"]["videos"] == ["v20.mp4"]

    with pytest.raises(SystemExit, match="no evaluation episodes"):
        demo.main(["--out", str(tmp_path / "empty"), "--report-only"])


def test_host_info_names_the_cpu_kernels(demo):
    import torch

    host = demo.host_info()
    assert host["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert host["cpu"] and host["cores"] >= 1 and host["torch"] == torch.__version__
