"""The import graph of verl/: no cycles (lazy imports included), and no import from a lower layer into a higher one.

Layers, lowest first: utils/protocol/single_controller; envs and models (which never import each
other); configuration and pure algorithms (neither imports the other); workers; the drivers. Every
import counts, including those inside functions and under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "verl"

# (prefix, layer, group); the longest matching prefix wins.
LAYERS = [
    ("verl.utils", 0, "utils"),
    ("verl.protocol", 0, "utils"),
    ("verl.single_controller", 0, "utils"),
    ("verl.envs", 1, "envs"),
    ("verl.models", 1, "models"),
    ("verl.trainer.config", 2, "config"),
    ("verl.trainer.ppo.core_algos", 2, "algorithms"),
    ("verl.trainer.ppo.metrics", 2, "algorithms"),
    ("verl.trainer.sft.core", 2, "algorithms"),
    ("verl.trainer.sft.augment", 2, "algorithms"),
    ("verl.trainer.sft.data", 2, "algorithms"),
    ("verl.workers", 3, "workers"),
    ("verl.trainer", 4, "driver"),
    ("verl", 0, "utils"),
]
# Groups of one layer that must not import each other.
SIBLINGS_APART = [("envs", "models"), ("config", "algorithms")]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> tuple[int, str]:
    best = max(
        (p for p in LAYERS if module == p[0] or module.startswith(p[0] + ".")), key=lambda p: len(p[0])
    )
    return best[1], best[2]


def imports_of(path: Path, module: str) -> tuple[set[str], set[str]]:
    """(every verl module imported anywhere in the file, type-checking imports included; those
    imported at module level)."""
    tree = ast.parse(path.read_text())
    top_level = {id(n) for n in tree.body}
    every, top = set(), set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + [base]
                ).strip(".")
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            target = _resolve(name)
            if target and target != module:
                every.add(target)
                if id(node) in top_level:
                    top.add(target)
    return every, top


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The verl module `name` refers to (a module, or the module defining the imported name)."""
    while name.startswith("verl"):
        if name in MODULES:
            return name
        name = name.rsplit(".", 1)[0] if "." in name else ""
    return None


GRAPH = {m: imports_of(p, m) for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_or_sideways_import(module):
    layer, group = layer_of(module)
    bad = []
    for target in sorted(GRAPH[module][0]):
        t_layer, t_group = layer_of(target)
        if t_layer > layer:
            bad.append(f"{target} (layer {t_layer} {t_group} above {layer} {group})")
        elif (group, t_group) in SIBLINGS_APART or (t_group, group) in SIBLINGS_APART:
            bad.append(f"{target} ({t_group} from {group})")
    assert not bad, f"{module} imports {bad}"


def test_no_import_cycle():
    graph = {m: GRAPH[m][0] for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            # A package's __init__ importing its own submodules is not a cycle through the package.
            if state.get(t) == 1 and not m.startswith(t + "."):
                cycle = stack[stack.index(t) :] + [t]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_checker_sees_violations():
    assert layer_of("verl.workers.fsdp_workers") == (3, "workers")
    assert layer_of("verl.trainer.ppo.ray_trainer") == (4, "driver")
    assert layer_of("verl.trainer.config.validate") == (2, "config")
    assert layer_of("verl.envs.libero.env") == (1, "envs")
    assert "verl.trainer.config" in GRAPH["verl.workers.fsdp_workers"][0]
    assert "verl.envs.registry" in GRAPH["verl.envs.config"][0]  # a lazy import counts
