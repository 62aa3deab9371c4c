"""The package's layers: imports point down, never in circles, and no module grows into a hub.

Layers, lowest first (a module may import its own package and lower layers):

    config, progress   ->  io  ->  normalize, measure, metrics, overlay  ->  models, data
    ->  segmentation  ->  synthesis  ->  training  ->  distributed  ->  _napari  ->  cli, widgets (nothing imports these)
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_nanogan"
LAYERS = [
    {"", "config", "progress"},  # "": the package's lazy face (``__version__``; it imports nothing itself)
    {"io"},
    {"normalize", "measure", "metrics", "overlay"},
    {"models", "data"},
    {"segmentation"},
    {"synthesis"},
    {"training"},
    {"distributed"},  # Dask batches and blocks, an optional extra
    {"_napari"},  # the npe2 reader and samples; the clients may use its reader preference
    {"cli", "widgets"},
]
LAYER = {name: k for k, names in enumerate(LAYERS) for name in names}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Package modules ``name`` imports (at any depth of the file, lazy ones too; not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.ImportFrom) and child.level > 0:
                base = package[: len(package) - (child.level - 1)]
                target = ".".join(base + ([child.module] if child.module else []))
                for alias in child.names:
                    full = f"{target}.{alias.name}".strip(".")
                    found.add(full if full in modules else target)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in child.names] if isinstance(child, ast.Import) else [child.module or ""]
                for n in names:
                    if n.startswith("napari_nanogan."):
                        found.add(n[len("napari_nanogan."):])
            visit(child)

    visit(tree)
    return {m for m in found if m in modules and m != name}


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items() if name}


def _top(module: str) -> str:
    return module.split(".")[0]


def test_every_package_has_a_layer(graph):
    assert {_top(m) for m in graph} <= set(LAYER), sorted({_top(m) for m in graph} - set(LAYER))


def test_imports_point_down(graph):
    upward = [f"{m} -> {t}" for m, targets in graph.items() for t in targets
              if _top(t) != _top(m) and LAYER[_top(t)] >= LAYER[_top(m)]]
    assert not upward, upward


def test_no_import_circles(graph):
    state, stack, cycles = {}, [], []

    def walk(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    assert not cycles, [" -> ".join(c) for c in cycles]


def test_no_module_is_a_hub():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_public_face_imports_no_torch_until_used():
    import subprocess
    import sys

    code = ("import sys; import napari_nanogan as n; assert 'torch' not in sys.modules, 'torch at import';"
            "from napari_nanogan import segment, load_segmenter, synthesize, load_generator, measure_particles;"
            "assert callable(segment) and callable(load_generator); print(sorted(n.__all__)[:3])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
