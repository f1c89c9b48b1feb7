"""SFT entry point: fine-tune a policy on LIBERO HDF5 demonstrations.

    python -m verl.trainer.main_sft data.paths=[/data/libero_object] data.task_ids=[0,1] model.init=tiny
    python -m verl.trainer.main_sft model.path=/ckpt/openvla-7b-oft data.paths=['/data/*.hdf5']
    python -m verl.trainer.main_sft --cfg job          # print the whole config tree

Checkpoints land in `<trainer.default_local_dir>/global_step_<k>/actor` in the Hugging Face layout
with the demonstrations' `dataset_statistics.json`; GRPO starts from them with
`python -m verl.trainer.main_ppo actor_rollout_ref.model.path=<that directory>`.
"""

from __future__ import annotations

from verl.trainer.config.entry import hydra_entry
from verl.trainer.config.sft import SFTConfig, validate_sft_config
from verl.trainer.ray_session import run_driver


def run_sft(config: SFTConfig) -> dict[str, float]:
    """Run the SFT driver on a Ray cluster (started here unless one is running); returns the last
    evaluation's metrics."""
    from verl.trainer.sft.trainer import SFTTrainer

    return run_driver(lambda: SFTTrainer(config), config.trainer.runtime_env, config.trainer.ray_address)


def _validate_and_run(config: SFTConfig) -> None:
    validate_sft_config(config)
    run_sft(config)


def main() -> None:
    hydra_entry("sft_trainer", SFTConfig, _validate_and_run)


if __name__ == "__main__":
    main()
