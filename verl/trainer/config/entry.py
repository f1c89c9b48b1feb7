"""Hydra command-line entry points for the trainers: plugins and moved keys handled before Hydra
parses, then the typed config handed to the trainer."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from verl.trainer.config.compose import (
    check_moved_keys,
    from_schema,
    hydra_schema,
    import_plugins,
    plugins_in,
)
from verl.trainer.config.removed import check_removed_overrides


def hydra_entry(config_name: str, root_cls: type, run: Callable[[Any], Any]) -> None:
    """Parse `sys.argv` with Hydra against `root_cls`'s schema and call `run(config)`."""
    import hydra
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    overrides = [a for a in sys.argv[1:] if not a.startswith("-")]
    try:
        check_moved_keys(overrides)
        check_removed_overrides(overrides)
        import_plugins(plugins_in(overrides))
    except ValueError as err:
        sys.exit(f"error: {err}")
    ConfigStore.instance().store(name=config_name, node=hydra_schema(root_cls))

    @hydra.main(version_base=None, config_path=None, config_name=config_name)
    def _main(cfg: Any) -> None:
        run(from_schema(OmegaConf.to_object(cfg), root_cls))

    _main()
