"""RoboTwin 2.0 tasks, step limits and seeds as data (cheap: no simulator import).

Two protocols:
- "simplevla" (default): SimpleVLA-RL's rollout (`RobHFRollout.max_steps`): 200 actions for most tasks,
  shorter or longer for a few; training seeds from 100000, evaluation seeds from 100100000.
- "official": RoboTwin's `task_config/_eval_step_limit.yml` limits and `script/eval_policy.py`'s seeds
  (100000 * (1 + seed) onwards, 100 per task).

SimpleVLA-RL's seed *lists* skip the seeds its cuRobo expert could not solve with the official assets;
they are valid only for those assets and are not shipped here. Initial state i maps to a seed by rule:
ids 0..NUM_TRAIN_SEEDS-1 are training seeds, the next NUM_EVAL_SEEDS ids are evaluation seeds.
"""

from __future__ import annotations

from verl.envs.base import ResetRequest

ENV_NAME = "robotwin2"
SUITE_PREFIX = "robotwin2_"
PROTOCOLS = ("simplevla", "official")

# RoboTwin's official per-task evaluation step limits (task_config/_eval_step_limit.yml).
OFFICIAL_MAX_STEPS = {
    "adjust_bottle": 400, "beat_block_hammer": 400, "blocks_ranking_rgb": 1200, "blocks_ranking_size": 1200,
    "click_alarmclock": 400, "click_bell": 400, "dump_bin_bigbin": 600, "grab_roller": 400,
    "handover_block": 800, "handover_mic": 600, "lift_pot": 400, "move_can_pot": 400,
    "move_playingcard_away": 400, "move_stapler_pad": 400, "hanging_mug": 900, "open_laptop": 700,
    "open_microwave": 1500, "pick_diverse_bottles": 400, "pick_dual_bottles": 400, "place_a2b_left": 400,
    "place_a2b_right": 400, "place_bread_basket": 700, "place_bread_skillet": 500, "place_can_basket": 700,
    "place_cans_plasticbox": 800, "place_container_plate": 400, "place_dual_shoes": 600,
    "place_empty_cup": 500, "place_fan": 400, "place_burger_fries": 500, "place_mouse_pad": 400,
    "place_object_basket": 700, "place_object_scale": 400, "place_object_stand": 400,
    "place_phone_stand": 400, "move_pillbottle_pad": 400, "place_shoe": 500, "press_stapler": 400,
    "put_bottles_dustbin": 1700, "put_object_cabinet": 700, "rotate_qrcode": 400, "scan_object": 500,
    "shake_bottle": 700, "shake_bottle_horizontally": 700, "stack_blocks_three": 1200,
    "stack_blocks_two": 800, "stack_bowls_three": 1200, "stack_bowls_two": 900, "stamp_seal": 400,
    "turn_switch": 400,
}  # fmt: skip
TASKS = tuple(sorted(OFFICIAL_MAX_STEPS))
# SimpleVLA-RL's per-task limits (RobHFRollout.max_steps); every other task gets SIMPLEVLA_DEFAULT_STEPS.
SIMPLEVLA_DEFAULT_STEPS = 200
SIMPLEVLA_MAX_STEPS = {
    "pick_dual_bottles": 100, "shake_bottle": 75, "place_container_plate": 150, "place_shoe": 250,
    "stack_blocks_two": 400, "stack_bowls_two": 400, "handover_block": 400, "blocks_ranking_rgb": 600,
    "put_bottles_dustbin": 800,
}  # fmt: skip
# Tasks whose scene holds only primitive blocks: with the clean configuration they need no object asset.
PRIMITIVE_TASKS = ("blocks_ranking_rgb", "blocks_ranking_size", "handover_block", "stack_blocks_three",
                   "stack_blocks_two")  # fmt: skip
SUITES = tuple(SUITE_PREFIX + t for t in TASKS)

TRAIN_SEED_BASE = 100_000
EVAL_SEED_BASE = 100_100_000
NUM_TRAIN_SEEDS = 1000
NUM_EVAL_SEEDS = 1000
OFFICIAL_SEED_BASE = 100_000
OFFICIAL_NUM_SEEDS = 100


def task_of(suite: str) -> str:
    """'robotwin2_stack_blocks_two' -> 'stack_blocks_two' (ValueError listing the suites otherwise)."""
    if suite not in SUITES:
        raise ValueError(f"suite={suite!r} is not a RoboTwin 2.0 suite; allowed: {list(SUITES)}")
    return suite[len(SUITE_PREFIX) :]


def max_steps(suite: str, protocol: str) -> int:
    """Actions per episode of `suite` under `protocol`."""
    task = task_of(suite)
    if protocol == "official":
        return OFFICIAL_MAX_STEPS[task]
    return SIMPLEVLA_MAX_STEPS.get(task, SIMPLEVLA_DEFAULT_STEPS)


def num_init_states(protocol: str) -> int:
    return OFFICIAL_NUM_SEEDS if protocol == "official" else NUM_TRAIN_SEEDS + NUM_EVAL_SEEDS


def episode_seed(init_state_id: int, protocol: str, official_seed: int = 0) -> int:
    """The RoboTwin seed (`setup_demo(seed=...)`) of an initial state id."""
    n = num_init_states(protocol)
    if not 0 <= init_state_id < n:
        raise ValueError(f"init_state_id={init_state_id}; allowed: 0..{n - 1} under protocol {protocol!r}")
    if protocol == "official":
        return OFFICIAL_SEED_BASE * (1 + official_seed) + init_state_id
    if init_state_id < NUM_TRAIN_SEEDS:
        return TRAIN_SEED_BASE + init_state_id
    return EVAL_SEED_BASE + init_state_id - NUM_TRAIN_SEEDS


def check_reset_request(request: ResetRequest) -> None:
    task_of(request.suite)
    if request.task_id != 0:
        raise ValueError(f"task_id={request.task_id}; allowed: 0 (one task per RoboTwin suite)")
    # Within the larger (simplevla) range; the worker checks against its own protocol.
    n = num_init_states("simplevla")
    if not 0 <= request.init_state_id < n:
        raise ValueError(f"init_state_id={request.init_state_id}; allowed: 0..{n - 1}")
