"""SFT: demonstration files -> frame cache and targets, the objective, augmentation, config errors; a
Ray run that fits the demonstrations; and SFT -> checkpoint -> `main_ppo` val_only in the simulator."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from verl.trainer.config.sft import ConfigError, compose_sft_config
from verl.trainer.sft.augment import augment_images, color_jitter, random_shift
from verl.trainer.sft.core import action_token_loss, lr_factor
from verl.trainer.sft.data import (
    batch_indices,
    build_samples,
    demo_statistics,
    load_demos,
    resolve_paths,
    task_of_file,
)
from verl.utils.dataset.libero_hdf5 import DemoStep, LiberoDemoWriter, demo_file_name

SUITE = "libero_object"


def _demo_steps(length: int, rng: np.random.Generator, size: int = 32) -> list[DemoStep]:
    """A reach-then-grasp episode: motion along x that grows, gripper closes for the last third."""
    steps = []
    for t in range(length):
        img = np.full((size, size, 3), 40, dtype=np.uint8)
        img[: size // 2, : 2 + t % (size - 2)] = 200  # a bar whose length encodes t (upside down)
        close = t >= 2 * length // 3
        steps.append(
            DemoStep(
                action=np.array([0.05 * t, -0.2, 0.1 * np.sin(t), 0, 0, 0.01 * t, 1.0 if close else -1.0]),
                state=rng.normal(size=10),
                agentview=img,
                wrist=255 - img,
                eef_pos=np.array([0.1 * t, 0.0, 1.0]),
                eef_quat=np.array([0.0, 0.0, 0.0, 1.0]),
                gripper_qpos=np.array([0.04, -0.04]) * (0.2 if close else 1.0),
                joint_pos=np.zeros(7),
            )
        )
    return steps


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """Demonstration files for libero_object tasks 0 (3 demos, named like ours) and 1 (2 demos,
    official-style: the instruction only in the file name)."""
    from verl.envs.libero import suites

    root = tmp_path_factory.mktemp("demos")
    rng = np.random.default_rng(0)
    lang0 = suites.task_language(SUITE, 0)
    attrs = {"problem_info": {"language_instruction": lang0}, "suite": SUITE, "task_id": 0}
    with LiberoDemoWriter(str(root / "ours" / "task0_demo.hdf5"), attrs) as w:
        for i, length in enumerate((14, 12, 13)):
            w.add_demo(_demo_steps(length, rng), init_state_id=i)
    with LiberoDemoWriter(str(root / "official" / demo_file_name(suites.task_name(SUITE, 1))), {}) as w:
        for length in (11, 15):
            w.add_demo(_demo_steps(length, rng), init_state_id=0)
    return root


@pytest.fixture(scope="module")
def tiny_processor(tmp_path_factory):
    from verl.models.openvla_oft.processing import OpenVLAOFTProcessor
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    path = write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", unnorm_key=SUITE)
    return OpenVLAOFTProcessor.from_pretrained(path)


# ---------------------------------------------------------------------- data
def test_paths_tasks_and_demo_selection(demo_dir):
    files = resolve_paths([str(demo_dir)])
    assert len(files) == 2
    assert resolve_paths([str(demo_dir / "*" / "task0_*.hdf5")]) == [
        str(demo_dir / "ours" / "task0_demo.hdf5")
    ]
    with pytest.raises(ConfigError, match="data.paths"):
        resolve_paths([str(demo_dir / "nothing_*.hdf5")])
    assert sorted(task_of_file(f, SUITE) for f in files) == [0, 1]
    with pytest.raises(ConfigError, match="data.suite='libero_goal'"):
        task_of_file(files[0], "libero_goal")

    demos = load_demos(files, SUITE, task_ids=[0, 1], demos_per_task=2, drop_noops=False)
    assert [(d.task_id, d.init_state_id, len(d.episode.actions)) for d in demos] == [
        (0, 0, 14),
        (0, 1, 12),
        (1, 0, 11),
        (1, 0, 15),
    ]
    from verl.envs.libero import suites

    assert demos[2].episode.instruction == suites.task_language(SUITE, 1)
    assert [d.task_id for d in load_demos(files, SUITE, task_ids=[1])] == [1, 1]
    with pytest.raises(ConfigError, match=r"data.task_ids: tasks \[5\]"):
        load_demos(files, SUITE, task_ids=[0, 5])


def test_frame_cache_and_chunk_targets(demo_dir, tiny_processor):
    demos = load_demos(resolve_paths([str(demo_dir / "ours")]), SUITE, drop_noops=False)
    samples = build_samples(demos, tiny_processor, chunk=8, num_images=1, pad_end=True)
    assert len(samples) == 14 + 12 + 13  # one sample per step with padded chunks
    s = tiny_processor.image_size
    assert samples.images.shape == (39, 1, s, s, 3) and samples.images.dtype == np.uint8
    ep = demos[0].episode
    # row t of demo 0: the pipeline's pixels of frame t and actions t..t+7, the last repeated at the end
    expected = tiny_processor.decode_image(tiny_processor.encode_image(ep.images[5]))
    np.testing.assert_array_equal(samples.images[5, 0], expected)
    np.testing.assert_allclose(samples.actions[3], ep.actions[3:11])
    np.testing.assert_allclose(samples.actions[10], np.concatenate([ep.actions[10:14], ep.actions[[13] * 4]]))
    assert set(np.unique(samples.actions[..., 6])) == {0.0, 1.0}  # LIBERO -1 open -> 1, +1 close -> 0
    np.testing.assert_allclose(samples.proprio[14], demos[1].episode.proprio[0])
    assert samples.demo_index.tolist() == [0] * 14 + [1] * 12 + [2] * 13
    assert samples.instructions == [demos[0].episode.instruction]
    unpadded = build_samples(demos, tiny_processor, chunk=8, pad_end=False)
    assert len(unpadded) == (14 - 7) + (12 - 7) + (13 - 7)
    two_cams = build_samples(
        load_demos(resolve_paths([str(demo_dir / "ours")]), SUITE, load_wrist=True), tiny_processor, 8, 2
    )
    assert two_cams.images.shape[1] == 2 and two_cams.images[0, 1].mean() > two_cams.images[0, 0].mean()


def test_statistics_and_tokenised_targets(demo_dir, tmp_path):
    from verl.models.openvla_oft.configuration import tiny
    from verl.models.openvla_oft.policy import OpenVLAOFTPolicy
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint
    from verl.utils.dataset.statistics import save_dataset_statistics

    demos = load_demos(resolve_paths([str(demo_dir)]), SUITE, drop_noops=False)
    stats = demo_statistics(demos)
    actions = np.concatenate([d.episode.actions for d in demos])
    np.testing.assert_allclose(stats["action"]["q99"], np.quantile(actions, 0.99, axis=0))
    assert stats["action"]["mask"] == [True] * 6 + [False]
    assert stats["num_trajectories"] == 5 and stats["num_transitions"] == len(actions)

    ckpt = write_tiny_checkpoint(tmp_path / "ckpt", config=tiny(use_proprio=True), unnorm_key="synthetic")
    save_dataset_statistics(stats, SUITE, str(tmp_path / "stats" / "dataset_statistics.json"))
    policy = OpenVLAOFTPolicy.from_pretrained(ckpt, unnorm_key=SUITE, statistics_path=tmp_path / "stats")
    # A checkpoint saved from it carries the statistics in use in config.json as well.
    policy.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())["norm_stats"]
    assert saved == json.loads((tmp_path / "saved" / "dataset_statistics.json").read_text())
    assert list(saved) == [SUITE] and saved[SUITE]["action"]["q99"] == stats["action"]["q99"]
    chunk = np.stack([actions[:8], actions[-8:]])  # [2, 8, 7]
    idx = policy.encode_actions(chunk).numpy().reshape(2, 8, 7)
    gripper = chunk[..., 6]
    np.testing.assert_array_equal(idx[..., 6], np.where(gripper == 1.0, 0, 128))  # open -> 0, close -> 128
    decoded = policy.decode_actions(torch.from_numpy(idx.reshape(2, -1)))
    width = (np.array(stats["action"]["q99"]) - np.array(stats["action"]["q01"]))[:6] / 255
    inside = (chunk[..., :6] >= stats["action"]["q01"][:6]) & (chunk[..., :6] <= stats["action"]["q99"][:6])
    err = np.abs(decoded[..., :6] - chunk[..., :6])
    assert np.all(err[inside] <= np.broadcast_to(width, err.shape)[inside] + 1e-6)
    assert np.all(decoded[..., 6][gripper == 1.0] > 0.5) and np.all(decoded[..., 6][gripper == 0.0] < 0.5)


def test_batch_indices_epochs_and_ranks():
    n, batch = 10, 4
    stream = np.concatenate([batch_indices(step, batch, n, seed=3) for step in range(5)])  # 20 = 2 epochs
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert not np.array_equal(stream[:10], stream[10:])  # a fresh permutation per epoch
    np.testing.assert_array_equal(batch_indices(2, batch, n, 3), stream[8:12])  # straddles the epochs
    assert not np.array_equal(batch_indices(0, batch, n, 4), batch_indices(0, batch, n, 3))
    # ranks slice the same global batch: disjoint, covering it
    rows = batch_indices(7, 8, 100, 0)
    parts = [rows[r * 4 : (r + 1) * 4] for r in range(2)]
    assert set(parts[0]).isdisjoint(parts[1]) and len(set(rows)) == 8


# ---------------------------------------------------------------------- objective, schedule, augmentation
def test_action_token_loss_by_hand():
    targets = torch.tensor([[0, 255, 7]])
    loss, acc = action_token_loss(torch.zeros(1, 3, 256), targets)
    assert loss.item() == pytest.approx(math.log(256))
    assert acc.item() == pytest.approx(1 / 3)  # a tie's argmax is index 0: it hits the first target only
    logits = torch.full((1, 3, 256), -1e4)
    logits[0, [0, 1, 2], [0, 255, 7]] = 0.0
    loss, acc = action_token_loss(logits, targets)
    assert loss.item() == pytest.approx(0.0, abs=1e-6) and acc.item() == 1.0
    # label smoothing eps: loss = (1 - eps) * CE + eps * mean over classes of -log p
    logits = torch.randn(2, 3, 256, generator=torch.Generator().manual_seed(0))
    targets = torch.randint(0, 256, (2, 3), generator=torch.Generator().manual_seed(1))
    logp = torch.log_softmax(logits, -1)
    nll = -logp.gather(-1, targets[..., None]).mean()
    expected = 0.9 * nll - 0.1 * logp.mean()
    assert action_token_loss(logits, targets, 0.1)[0].item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="disagree"):
        action_token_loss(torch.zeros(1, 4, 256), targets)


def test_lr_schedule():
    assert lr_factor(0, 10, 100, "cosine") == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, "cosine") == pytest.approx(1.0)
    assert lr_factor(10, 10, 100, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100, "cosine", 0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(100, 10, 100, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(500, 10, 100, "constant") == 1.0
    assert lr_factor(3, 0, 100, "constant") == 1.0


def test_augmentations():
    g = torch.Generator().manual_seed(0)
    img = torch.zeros(64, 16, 16, 3, dtype=torch.uint8)
    img[:, 8, 8] = 255
    assert torch.equal(random_shift(img, 0, g), img)
    shifted = random_shift(img, 3, g)
    pos = [divmod(int(i.reshape(16, 16, 3)[..., 0].argmax()), 16) for i in shifted]
    offsets = {(r - 8, c - 8) for r, c in pos}
    assert all(abs(dr) <= 3 and abs(dc) <= 3 for dr, dc in offsets) and len(offsets) > 10
    assert all(int(i.sum()) == 3 * 255 for i in shifted)  # the dot is moved, never lost (|shift| < 8)
    grey = torch.full((200, 4, 4, 3), 100, dtype=torch.uint8)
    jittered = color_jitter(grey, 0.2, 0.0, g).float().mean(dim=(1, 2, 3))
    assert jittered.min() >= 80 - 1e-4 and jittered.max() <= 120 + 1e-4 and jittered.std() > 5
    both = augment_images(torch.zeros(5, 2, 16, 16, 3, dtype=torch.uint8), 2, 0.1, 0.1, g)
    assert both.shape == (5, 2, 16, 16, 3) and both.dtype == torch.uint8


# ---------------------------------------------------------------------- config
def test_config_defaults_and_errors(demo_dir):
    base = [f"data.paths=[{demo_dir}]", "model.init=tiny"]
    c = compose_sft_config(base + ["data.suite=libero_spatial"])
    assert c.env.suite == "libero_spatial"  # follows data.suite
    assert c.env.num_workers == 1 and c.trainer.train_batch_size == 32
    with pytest.raises(ConfigError, match="data.paths"):
        compose_sft_config(["model.init=tiny"])
    with pytest.raises(ConfigError, match="model.init='big'.*pretrained, tiny"):
        compose_sft_config(base + ["model.init=big"])
    with pytest.raises(ConfigError, match="model.path"):
        compose_sft_config([f"data.paths=[{demo_dir}]"])
    with pytest.raises(ConfigError, match="trainer.train_batch_size=33"):
        compose_sft_config(base + ["trainer.train_batch_size=33", "trainer.n_gpus_per_node=2"])
    with pytest.raises(ConfigError, match="trainer.micro_batch_size_per_gpu=5"):
        compose_sft_config(base + ["trainer.micro_batch_size_per_gpu=5"])
    with pytest.raises(ConfigError, match="env.suite"):
        compose_sft_config(base + ["env.suite=libero_goal"])
    with pytest.raises(ConfigError, match="model.tiny_vision_dim=48.*multiple of 32"):
        compose_sft_config(base + ["model.tiny_vision_dim=48"])
    with pytest.raises(ConfigError, match="model.tiny_llm_dim=0.*multiple of 16"):
        compose_sft_config(base + ["model.tiny_llm_dim=0"])


def test_initial_tiny_checkpoint_has_the_configured_widths(demo_dir, tmp_path):
    from verl.models.openvla_oft.configuration import OpenVLAOFTConfig
    from verl.trainer.sft.trainer import initial_checkpoint

    config = compose_sft_config(
        [f"data.paths=[{demo_dir}]", "model.init=tiny", "model.tiny_vision_dim=64", "model.tiny_llm_dim=96"]
    )
    path = initial_checkpoint(config, tmp_path, SUITE)
    saved = OpenVLAOFTConfig.from_pretrained(path)
    assert saved.text_config["hidden_size"] == 96 and saved.text_config["intermediate_size"] == 192
    assert [o["embed_dim"] for o in saved.timm_overrides] == [64, 64]
    assert [o["num_heads"] for o in saved.timm_overrides] == [4, 4]


# ---------------------------------------------------------------------- Ray runs
def sft_overrides(demo_dir: Path, out: Path, steps: int, workers: int) -> list[str]:
    return [
        f"data.paths=[{demo_dir}]",
        "data.drop_noops=false",
        "model.init=tiny",
        f"trainer.n_gpus_per_node={workers}",
        f"trainer.total_training_steps={steps}",
        "trainer.train_batch_size=16",
        "trainer.micro_batch_size_per_gpu=4",
        "trainer.logger=[console,jsonl]",
        f"trainer.default_local_dir={out}",
        "trainer.log_freq=10",
    ]


def metrics_by_step(out: Path) -> dict[int, dict]:
    records: dict[int, dict] = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        records.setdefault(r["step"], {}).update(r)
    return records


@pytest.mark.ray
@pytest.mark.slow
def test_sft_learns_the_action_tokens(demo_dir, tmp_path, ray_local):
    """Two FSDP ranks with gradient accumulation: the tiny random model learns the tokens of the demonstrations."""
    from verl.trainer.main_sft import run_sft

    out = tmp_path / "fit"
    cfg = compose_sft_config(
        sft_overrides(demo_dir, out, steps=60, workers=2)
        + ["trainer.test_freq=-1", "trainer.eval_last=false", "optim.lr=2e-3", "optim.lr_warmup_steps=5"]
        + ["augment.random_shift_px=0", "augment.brightness=0", "augment.contrast=0"]
    )
    run_sft(cfg)
    m = metrics_by_step(out)
    assert m[0]["data/demos"] == 5 and m[0]["data/samples"] == 14 + 12 + 13 + 11 + 15
    assert m[10]["train/loss"] > 4.0  # ~log(256) = 5.55 at the start
    assert m[60]["train/loss"] < 0.55 * math.log(256)
    assert m[60]["train/token_accuracy"] > 0.4
    assert m[60]["perf/train_cpu_s_total"] > 0
    actor = out / "global_step_60" / "actor"
    stats = json.loads((actor / "dataset_statistics.json").read_text())
    assert list(stats) == [SUITE] and stats[SUITE]["action"]["mask"] == [True] * 6 + [False]


@pytest.mark.ray
@pytest.mark.slow
def test_sft_killed_run_resumes_exactly(demo_dir, tmp_path, ray_local, caplog):
    """A run that died after its step-6 checkpoint resumes there and ends with the weights and losses of
    an uninterrupted run: AdamW moments, the learning-rate schedule and the augmentation RNG come back."""
    from safetensors.torch import load_file

    from verl.trainer.main_sft import run_sft

    extra = ["trainer.test_freq=-1", "trainer.eval_last=false", "trainer.save_freq=6", "trainer.log_freq=3"]
    extra += ["optim.lr=2e-3", "optim.lr_warmup_steps=4"]  # warm-up spans the resume point
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run_sft(compose_sft_config(sft_overrides(demo_dir, full, steps=12, workers=1) + extra))
    # What a run killed during step 7-12 leaves on disk: its complete step-6 checkpoint.
    resumed.mkdir()
    shutil.copytree(full / "global_step_6", resumed / "global_step_6")
    with caplog.at_level("WARNING"):
        run_sft(compose_sft_config(sft_overrides(demo_dir, resumed, steps=12, workers=1) + extra))
    assert "at step 6" in caplog.text

    m_full, m_res = metrics_by_step(full), metrics_by_step(resumed)
    assert 3 not in m_res and 6 not in m_res  # no step before the checkpoint was trained again
    for step in (9, 12):
        assert m_res[step]["train/loss"] == pytest.approx(m_full[step]["train/loss"], rel=1e-6)
        assert m_res[step]["train/lr"] == pytest.approx(m_full[step]["train/lr"], rel=1e-9)
    a = load_file(full / "global_step_12" / "actor" / "model.safetensors")
    b = load_file(resumed / "global_step_12" / "actor" / "model.safetensors")
    at6 = load_file(full / "global_step_6" / "actor" / "model.safetensors")
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k], at6[k]) for k in a)  # steps 7-12 changed the weights
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)

    with pytest.raises(ConfigError, match="trainer.resume_mode='sometimes'.*auto, disable, resume_path"):
        compose_sft_config(sft_overrides(demo_dir, full, 12, 1) + ["trainer.resume_mode=sometimes"])
    with pytest.raises(ConfigError, match="trainer.resume_from_path"):
        compose_sft_config(sft_overrides(demo_dir, full, 12, 1) + ["trainer.resume_mode=resume_path"])


@pytest.mark.sim
@pytest.mark.ray
@pytest.mark.slow
def test_sft_checkpoint_runs_in_main_ppo(demo_dir, tmp_path):
    """A short SFT run (2 workers, proprio, evaluation in the simulator) whose checkpoint main_ppo
    loads and rolls out with val_only."""
    out = tmp_path / "sft"
    args = sft_overrides(demo_dir, out, steps=4, workers=2) + [
        "data.task_ids=[0]",
        "model.use_proprio=true",
        "trainer.test_freq=2",
        "trainer.val_init_states=45",
        "trainer.val_videos_per_task=1",
        "env.max_steps=16",
    ]
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_sft", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    m = metrics_by_step(out)
    assert m[2]["val/episodes"] == 1 and m[4]["val/episodes"] == 1 and m[4]["val/env_errors"] == 0
    assert m[4]["val/episode_steps_mean"] == 16  # the random policy runs into the step limit
    assert len(list((out / "videos").rglob("*.mp4"))) == 2
    actor = out / "global_step_4" / "actor"
    assert (out / "global_step_4" / "COMPLETE").is_file()

    from verl.models.registry import load_policy

    policy = load_policy("openvla-oft", actor)
    assert policy.unnorm_key == SUITE and policy.config.use_proprio
    data_stats = json.loads((out / "data" / "dataset_statistics.json").read_text())
    assert policy.statistics == data_stats

    val = tmp_path / "val"
    ppo = [
        f"actor_rollout_ref.model.path={actor}",
        "actor_rollout_ref.model.use_proprio=true",
        f"data.task_suite_name={SUITE}",
        "data.task_ids=[0]",
        "data.val_init_states=45",
        "env.max_steps=16",
        "env.num_workers=1",
        "trainer.val_only=true",
        "trainer.logger=[console,jsonl]",
        f"trainer.default_local_dir={val}",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", *ppo],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = metrics_by_step(val)[0]
    assert result["val/episodes"] == 1 and "val/test_score/libero_object/task_0" in result


def test_files_recording_their_suite_and_task_need_no_libero_lookup(tmp_path):
    """Our collector records suite and task id (any simulator, e.g. ManiSkill): the reader takes the
    task and the instruction from the file."""
    rng = np.random.default_rng(1)
    attrs = {"problem_info": {"language_instruction": "push the cube"}, "suite": "maniskill", "task_id": 1}
    with LiberoDemoWriter(str(tmp_path / "PushCube-v1_demo.hdf5"), attrs) as w:
        w.add_demo(_demo_steps(9, rng), init_state_id=4)
    demos = load_demos(resolve_paths([str(tmp_path)]), "maniskill", drop_noops=False)
    assert [(d.task_id, d.init_state_id, d.episode.instruction) for d in demos] == [(1, 4, "push the cube")]
    with pytest.raises(ConfigError, match="data.task_ids"):
        load_demos(resolve_paths([str(tmp_path)]), "maniskill", task_ids=[0])
