"""Prompts for GRPO: (suite, task id, initial-state id) triples, and a seeded, resumable sampler.

A prompt carries no text: the instruction comes from the simulator's task. Training and validation
prompts use disjoint initial-state ranges by default (`data.train_init_states`, `data.val_init_states`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verl.envs.registry import split_suites
from verl.envs.spec import EnvSpec
from verl.utils.config_values import ConfigError, parse_id_ranges


@dataclass(frozen=True)
class Prompt:
    suite: str
    task_id: int
    init_state_id: int


def build_prompts(
    spec: EnvSpec,
    suites: str,
    task_ids: list[int] | None,
    init_states: str,
    field: str = "data.train_init_states",
) -> list[Prompt]:
    """Every (suite, task, init state) combination of simulator `spec`, in a fixed order.
    Unknown suites and out-of-range ids are errors naming the field."""
    prompts = []
    state_ids = parse_id_ranges(init_states, field)
    for suite in split_suites(suites):
        if suite not in spec.suites:
            raise ConfigError(
                f"data.task_suite_name: {suite!r} is not a suite of {spec.name}; allowed: {spec.suites}"
            )
        n_tasks = spec.num_tasks(suite)
        tasks = list(range(n_tasks)) if task_ids is None else list(task_ids)
        bad = [t for t in tasks if not 0 <= t < n_tasks]
        if bad:
            raise ConfigError(f"data.task_ids={tasks} has ids {bad} outside {suite}'s range 0..{n_tasks - 1}")
        for task in tasks:
            n_states = spec.num_init_states(suite, task)
            if state_ids[-1] >= n_states:
                raise ConfigError(
                    f"{field}={init_states!r} names state {state_ids[-1]}, but {suite} task {task} "
                    f"has {n_states} initial states (allowed: 0-{n_states - 1})"
                )
            prompts.extend(Prompt(suite, task, s) for s in state_ids)
    return prompts


class PromptSampler:
    """An endless stream of training prompts: a fresh seeded permutation every epoch.

    Batches may straddle epochs (small prompt sets). The state (epoch, cursor) is saved in
    checkpoints so that a resumed run sees exactly the prompts it would have seen.
    """

    def __init__(self, prompts: list[Prompt], shuffle: bool, seed: int) -> None:
        if not prompts:
            raise ConfigError(
                "no training prompts: check data.task_suite_name, data.task_ids, data.train_init_states"
            )
        self.prompts = prompts
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.cursor = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.prompts))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.prompts))

    def next_batch(self, size: int) -> list[Prompt]:
        batch = []
        while len(batch) < size:
            if self.cursor == len(self._order):
                self.epoch += 1
                self.cursor = 0
                self._order = self._permutation(self.epoch)
            take = min(size - len(batch), len(self._order) - self.cursor)
            batch.extend(self.prompts[i] for i in self._order[self.cursor : self.cursor + take])
            self.cursor += take
        return batch

    def state_dict(self) -> dict[str, int]:
        return {
            "epoch": self.epoch,
            "cursor": self.cursor,
            "seed": self.seed,
            "num_prompts": len(self.prompts),
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["num_prompts"] != len(self.prompts):
            raise ValueError(
                f"checkpoint was made with {state['num_prompts']} training prompts, this config has "
                f"{len(self.prompts)}: data.* must match the run being resumed"
            )
        self.seed = state["seed"]
        self.epoch = state["epoch"]
        self.cursor = state["cursor"]
        self._order = self._permutation(self.epoch)
