"""Every config key does something: each leaf of the GRPO and SFT configs is read by code outside the
config package. A key that is accepted, validated and documented but read nowhere fails here.

"Read" is found statically: an attribute access `<parent>.<leaf>` (e.g. `c.model.attn_implementation`)
or `<alias>.<leaf>` where the alias was assigned from an expression ending in `.<parent>`
(`m = c.model; m.lora_rank`). Matching the parent as well as the leaf keeps a same-named field of
another object (the model config's `attn_implementation`) from counting.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from verl.trainer.config.ppo import PPOConfig
from verl.trainer.config.sft import SFTConfig

REPO = Path(__file__).resolve().parents[2]
# Code that reads the config: the package and its tools (scripts/ reads env-level keys such as env.suite).
ROOTS = ("verl", "scripts")
# Files that define or validate the config: a read there does not make a key do anything.
CONFIG_FILES = ("verl/trainer/config/", "verl/envs/config.py")
# Keys that are read by validation only, on purpose, each with its reason.
VALIDATION_ONLY = {
    # The only implemented choice; the key names the algorithm and rejects other values.
    "actor_rollout_ref.actor.strategy": "fsdp2 is the only strategy",
    "algorithm.adv_estimator": "grpo is the only estimator",
    # Wired by the GPU-memory work (offload of parameters and optimiser state between phases).
    "actor_rollout_ref.actor.fsdp_config.param_offload": "pending: GPU memory issue",
    "actor_rollout_ref.actor.fsdp_config.optimizer_offload": "pending: GPU memory issue",
    # The default suite of env-level tools (EnvConfig.default_suite); the trainers take suites from
    # data.*, and the SFT trainer requires it to equal data.suite.
    "env.suite": "env-level tools' default",
}


def _sim_sections() -> dict[str, type]:
    """`env.<name>` -> the registered simulator's own config class (the `env.sims` entries)."""
    from verl.envs.registry import available_envs, get_env_spec

    # Built-in simulators only: a plugin registered by another test reads its keys under tests/.
    return {
        f"env.{name}": get_env_spec(name).config_cls
        for name in available_envs()
        if get_env_spec(name).module.startswith("verl.")
    }


def leaves(cls: type, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if f"{prefix}{f.name}" == "env.sims":
            for section, sim_cls in _sim_sections().items():
                out += leaves(sim_cls, f"{section}.")
        elif dataclasses.is_dataclass(default):
            out += leaves(type(default), f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def _name(node: ast.AST | None) -> str | None:
    """`x` for `x` and `a.b.x`; the class name for an annotation ("EnvConfig", "Optional[...]" aside)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.split(".")[-1]
    return None


def attribute_pairs() -> set[tuple[str, str]]:
    """(parent, attribute) pairs read anywhere in `verl/` and `scripts/` outside the config files. A parent is an
    attribute name (`model` in `c.model.x`) or what a variable holds: the attribute it was assigned from
    (`m = c.model`) or its annotated class (`def f(cfg: EnvConfig)`; `self.cfg = cfg`)."""
    pairs: set[tuple[str, str]] = set()
    for path in (p for root in ROOTS for p in (REPO / root).rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(CONFIG_FILES):
            continue
        tree = ast.parse(path.read_text())
        aliases: dict[str, set[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in node.args.args + node.args.kwonlyargs:
                    if _name(arg.annotation):
                        aliases.setdefault(arg.arg, set()).add(_name(arg.annotation))
        for _ in range(2):  # aliases of aliases (`self.cfg = cfg`)
            for node in ast.walk(tree):
                if isinstance(node, ast.AnnAssign) and _name(node.annotation):
                    # `self.settings: LiberoConfig = cfg.sim`
                    aliases.setdefault(_name(node.target), set()).add(_name(node.annotation))
                if not isinstance(node, ast.Assign):
                    continue
                for target in node.targets:
                    # `t, m = config.trainer, config.model` pairs element-wise.
                    both = isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                    for tgt, value in zip(target.elts, node.value.elts) if both else [(target, node.value)]:
                        if isinstance(value, ast.Name):
                            held = aliases.get(value.id, set())
                        elif isinstance(value, ast.Attribute):
                            held = {value.attr} | aliases.get(value.attr, set())
                        else:
                            continue
                        if _name(tgt) and held:
                            aliases.setdefault(_name(tgt), set()).update(held)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                parent = _name(node.value)
                pairs.add((parent, node.attr))
                for held in aliases.get(parent, ()):
                    pairs.add((held, node.attr))
    return pairs


def section_classes(cls: type, prefix: str = "") -> dict[str, set[str]]:
    """Section path -> names of its dataclass and of the classes it inherits fields from, e.g.
    "trainer" -> {"TrainerConfig", "RunConfig"}; each simulator's node -> its config class."""
    out = {prefix.rstrip("."): {c.__name__ for c in cls.__mro__ if dataclasses.is_dataclass(c)}}
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        if f"{prefix}{f.name}" == "env.sims":
            for section, sim_cls in _sim_sections().items():
                out.update(section_classes(sim_cls, f"{section}."))
        elif dataclasses.is_dataclass(default):
            out.update(section_classes(type(default), f"{prefix}{f.name}."))
    return out


@pytest.mark.parametrize("config_cls", [PPOConfig, SFTConfig], ids=["ppo", "sft"])
def test_every_config_key_is_read_outside_the_config_package(config_cls):
    pairs = attribute_pairs()
    classes = section_classes(config_cls)
    unread = []
    for key in leaves(config_cls):
        section, leaf = key.rsplit(".", 1)
        parents = {section.split(".")[-1], *classes[section]}
        if key in VALIDATION_ONLY or any((p, leaf) in pairs for p in parents):
            continue
        unread.append(key)
    assert not unread, f"config keys that no code outside the config package reads: {unread}"


def test_the_check_catches_an_unread_key():
    @dataclasses.dataclass
    class Section:
        surely_nobody_reads_this_key: int = 0

    @dataclasses.dataclass
    class Config:
        trainer: Section = dataclasses.field(default_factory=Section)

    key = leaves(Config)[0]
    assert key == "trainer.surely_nobody_reads_this_key"
    assert ("trainer", "surely_nobody_reads_this_key") not in attribute_pairs()


def test_removed_keys_name_their_replacement():
    from verl.trainer.config import ConfigError
    from verl.trainer.config.compose import compose_config

    with pytest.raises(ConfigError, match="algorithm.kl_ctrl.kl_coef was removed.*kl_loss_coef"):
        compose_config(["actor_rollout_ref.model.path=/ckpt", "algorithm.kl_ctrl.kl_coef=0.0"])


def test_flash_attention_without_flash_attn_is_refused_at_validation():
    import importlib.util

    from verl.trainer.config import ConfigError
    from verl.trainer.config.compose import compose_config

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here")
    with pytest.raises(ConfigError, match="attn_implementation.*flash-attn"):
        compose_config(
            [
                "actor_rollout_ref.model.path=/ckpt",
                "actor_rollout_ref.model.attn_implementation=flash_attention_2",
            ]
        )
