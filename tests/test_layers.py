"""The package's imports point one way: no module imports, at any depth and in any place
(function bodies and type-checking blocks included), one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src/nmt"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules} - {"nmt"}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(paths)) for name, path in paths.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A chain of imports that returns to its start, if there is one."""
    state: dict[str, str] = {}

    def visit(node: str, chain: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                return [*chain[chain.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*chain, nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_module_imports_one_that_imports_it_back():
    loop = cycle(graph())
    assert loop is None, " -> ".join(loop)


def test_the_model_layer_knows_no_loss_training_or_search():
    """nanoGPT-style: the model modules come without the code that trains or decodes them."""
    edges = graph()
    below: set[str] = set()
    todo = ["nmt.seq2seq", *(name for name in edges if name.startswith("nmt.models"))]
    while todo:
        name = todo.pop()
        if name not in below:
            below.add(name)
            todo += edges[name]
    assert not below & {"nmt.loss", "nmt.training", "nmt.decoding", "nmt.batching", "nmt.ids"}


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def external_imports(path: Path) -> set[str]:
    """The top-level packages outside this one that `path` imports anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found - {"nmt"}


def test_the_translation_library_stands_alone():
    """`Translator` and what it loads know no pipeline folder, stage, plotting backend or
    progress bar: a notebook or another program imports it without them."""
    edges = graph()
    library: set[str] = set()
    todo = ["nmt.translator"]
    while todo:
        name = todo.pop()
        if name not in library:
            library.add(name)
            todo += edges[name]
    pipeline = {"nmt.paths", "nmt.cli", "nmt.settings", "nmt.measure", "nmt.plots", "nmt.runtime"}
    assert not library & pipeline, sorted(library & pipeline)
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    for name in sorted(library):
        outside = external_imports(paths[name]) & {"tqdm", "matplotlib", "dvclive", "dvc"}
        assert not outside, f"{name} imports {sorted(outside)}"
