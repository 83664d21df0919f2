"""The package's shape: module-level imports between `hoginpaint` modules form no circle, and no module is a
re-export of another's names under an old path."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hoginpaint"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path) -> set[str]:
    """The `hoginpaint` modules `path` imports when it is imported (imports inside functions and under
    `if TYPE_CHECKING:` run later or never, so they cannot close a circle at import time)."""
    tree = ast.parse(path.read_text())
    found = set()
    this = module_name(path)
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("hoginpaint")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hoginpaint"):
            found.add(node.module)
            # `from hoginpaint import hub` imports the module hoginpaint.hub
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in found if name in modules and name != this}


def import_graph() -> dict[str, set[str]]:
    graph = {module_name(path): module_level_imports(path) for path in PACKAGE.rglob("*.py")}
    # importing a.b.c runs a/__init__ and a/b/__init__ first; a module's own packages are already being imported
    # when it runs (a package's __init__ importing its modules is how it names its API), so those edges are left out
    for name in list(graph):
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] -= own
        for imported in list(graph[name]):
            parts = imported.split(".")
            graph[name] |= {".".join(parts[:i]) for i in range(2, len(parts))} - {name} - own
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return stack[stack.index(successor):] + [successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert "hoginpaint.training.trainer" in graph and "hoginpaint.faces.framing" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_subpackages_show_the_architecture():
    for package in ("faces", "masks", "training", "hub", "evaluation", "baselines"):
        assert (PACKAGE / package / "__init__.py").is_file()
    flat = {path.stem for path in PACKAGE.glob("*.py")}
    # the former flat modules are gone, not kept as re-exports
    assert not flat & {"face_landmarks", "face_framing", "mask_shapes", "mask_input", "hub_files", "train_config",
                       "evaluate", "evaluation_report", "data", "validation", "checkpoints", "model_card"}
    # the baseline imports the trainer's shared types, never the HOG model's trainer
    deepfill = module_level_imports(PACKAGE / "baselines" / "deepfill.py")
    assert "hoginpaint.training.types" in deepfill and "hoginpaint.training.hog_model" not in deepfill
