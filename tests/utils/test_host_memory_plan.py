"""The host-memory plan's arithmetic on hand-computed cases (no timings), and the launch recipe's plan."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from verl.utils.host_memory_plan import (
    GIB,
    HostPlanSettings,
    kept_before_last_round,
    peak_phase,
    phase_items,
    step_items,
    total,
)

# Per trajectory: heavy 100 x 10 = 1000 bytes, light 10 x 10 = 100, added by the driver 5 x 10 = 50.
SMALL = HostPlanSettings(
    ranks_per_node=2,
    nodes=1,
    env_workers_per_rank=3,
    trajectories_per_round=8,
    trajectories_per_step=8,
    sampling_rounds=1,
    decision_steps=10,
    heavy_per_decision=100,
    light_per_decision=10,
    driver_added_per_decision=5,
    decoded_per_decision=1000,
    params=1000,
    sim_rss=7,
    worker_rss=11,
    driver_rss=13,
    ray_daemons_rss=17,
    ray_other_rss=19,
)
RESIDENT = 2 * 3 * 7 + 2 * 11 + 13 + 17 + 19  # 113


def test_resident_items_and_decoded_images():
    items = step_items(SMALL)
    assert (items["simulators"], items["workers"], items["driver"], items["ray_daemons"]) == (42, 22, 13, 17)
    assert items["decoded_images"] == 8 * 10 * 1000


def test_round_trip_peaks_at_the_update():
    items = step_items(SMALL)
    # Workers: 8 x (two copies of the images 2000 + light 100 + added 50); the store and the driver each
    # hold the whole batch once (8 x 1150).
    assert items["trajectories_workers"] == 8 * 2150
    assert items["trajectories_object_store"] == 8 * 1150
    assert items["trajectories_driver"] == 8 * 1150
    assert total(items) == RESIDENT + 80_000 + 17_200 + 9_200 + 9_200


def test_heavy_stays_keeps_the_images_out_of_the_driver():
    items = step_items(replace(SMALL, dataflow="heavy_stays"))
    assert items["trajectories_driver"] == 8 * 150  # light + added only
    assert items["trajectories_object_store"] == 8 * 1000 + 8 * 150  # images once, the driver's parts once
    assert items["trajectories_workers"] == 8 * 1150  # one copy of the images
    assert total(items) == RESIDENT + 80_000 + 1_200 + 9_200 + 9_200


def test_refill_rounds_make_the_rollout_return_the_peak():
    s = replace(SMALL, trajectories_per_round=16, sampling_rounds=2)
    assert kept_before_last_round(s) == 8  # min(step 8, one earlier round of 16)
    items = step_items(s)
    # Rollout return: the round (16 x 1100) in the workers and in the store, the driver holds it plus
    # the 8 kept: 24 x 1100 = 26400; the update moment is 35600 < 61600.
    assert items["trajectories_workers"] == 17_600
    assert items["trajectories_object_store"] == 17_600
    assert items["trajectories_driver"] == 26_400
    assert kept_before_last_round(replace(s, sampling_rounds=5)) == 8
    assert kept_before_last_round(replace(SMALL, sampling_rounds=3)) == 8


def test_two_nodes_halve_the_workers_share_not_the_driver():
    items = step_items(replace(SMALL, nodes=2))
    assert items["trajectories_workers"] == 4 * 2150
    assert items["trajectories_driver"] == 8 * 1150
    assert items["decoded_images"] == 40_000


def test_checkpoint_and_startup_phases():
    assert phase_items(SMALL, "checkpoint")["checkpoint_state_dict"] == 8000  # fp32 state dict + its clone
    assert total(phase_items(SMALL, "checkpoint")) == RESIDENT + 8000
    start = phase_items(SMALL, "startup")
    assert start["simulators"] == 0 and start["startup_full_models"] == 2 * 4000
    assert total(start) == 22 + 13 + 17 + 19 + 8000
    assert peak_phase(SMALL) == ("step", total(step_items(SMALL)))


def test_errors_name_the_allowed_values():
    with pytest.raises(ValueError, match="round_trip, heavy_stays"):
        replace(SMALL, dataflow="none")
    with pytest.raises(ValueError, match="step, checkpoint, startup"):
        phase_items(SMALL, "rollout")


def test_launch_recipe_plan():
    path = Path(__file__).resolve().parents[2] / "scripts" / "bench" / "host_memory.py"
    spec = importlib.util.spec_from_file_location("host_memory_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = bench.argparse.Namespace(
        rounds=2,
        jpeg_bytes=bench.IMAGE_BYTES,
        sim_rss_mib=1172,
        worker_rss_mib=4096,
        driver_rss_mib=1024,
        ray_rss_mib=370,
        ray_other_rss_mib=1024,
        dataflow="round_trip",
    )
    before = bench.recipe_settings(args)
    after = replace(before, dataflow="heavy_stays")
    # 64 simulators of 1172 MiB: 73.25 GiB on every plan.
    assert step_items(before)["simulators"] == 64 * 1172 * 2**20
    assert total(step_items(after)) < total(step_items(before))
    # Start-up reads the full fp32 7B model in each of the 8 ranks: ~225 GiB, the node's largest phase.
    assert peak_phase(after)[0] == "startup"
    assert 224 * GIB < phase_items(after, "startup")["startup_full_models"] < 225 * GIB
