"""The package's shape: no import circle, no module past about 400 lines, the dependencies
pointing one way between the subpackages, only numpy and torch as runtime dependencies, and
every library path working without kornia, torchvision and PIL."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gpuprep"
MAX_LINES = 400
# Each subpackage may import only those before it (and compat, a leaf, and itself).
LAYERS = [
    "compat",
    "decode",
    "data",
    "geometry",
    "kernels",
    "ops",
    "targets",
    "nn",
    "transfer",
    "bench",
]


def modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the package: dotted name -> (file, is a package)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, at any depth of its code (imports inside
    functions count), relative imports resolved, ``from pkg import name`` pointing at the
    submodule where ``name`` is one."""
    mods = modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in mods.items():
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for a in node.names:
                    sub = f"{source}.{a.name}"
                    targets.add(sub if sub in mods else source)
        graph[name] = {t for t in targets if t in mods and t != name}
    return graph


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    assert len(graph) > 30  # the walk found the package
    done: set[str] = set()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycles.append(path[path.index(node) :] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*path, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_subpackages_depend_only_on_those_before_them():
    wrong = []
    for name, targets in import_graph().items():
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in LAYERS:
            continue  # the package's own __init__, and the public front (functional)
        rank = LAYERS.index(parts[1])
        for t in targets:
            tp = t.split(".")
            if len(tp) >= 2 and tp[1] in LAYERS and LAYERS.index(tp[1]) > rank:
                wrong.append(f"{name} -> {t}")
    assert not wrong, wrong


def test_checks_and_compat_are_leaves():
    graph = import_graph()
    for leaf in ("gpuprep.compat", "gpuprep.ops.checks", "gpuprep.geometry.checks"):
        assert graph[leaf] == set(), (leaf, graph[leaf])
    assert graph["gpuprep.nn.scripted"] == set()


def test_no_module_is_long():
    long = {
        name: n
        for name, (path, _) in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_only_numpy_and_torch_are_runtime_dependencies():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip() for d in project["dependencies"]}
    assert names == {"numpy", "torch"}
    extras = project["optional-dependencies"]
    for extra in ("bench", "test"):
        assert any(d.startswith("kornia") for d in extras[extra]), extra
        assert any(d.startswith("torchvision") for d in extras[extra]), extra


WITHOUT_OPTIONAL = """
import sys
for name in ("kornia", "torchvision", "PIL", "PIL.Image"):
    sys.modules[name] = None  # import raises ImportError, as where it is not installed
import numpy as np
import torch
import gpuprep
from gpuprep import functional as F

rng = np.random.default_rng(0)
imgs = [rng.integers(0, 256, (9 + i, 7 + 2 * i, 3), dtype=np.uint8) for i in range(4)]
same = [(rng.integers(0, 256, (8, 6, 3), dtype=np.uint8), i) for i in range(4)]
x, y = gpuprep.collate(same)
assert gpuprep.Preprocess()(x).shape == (4, 3, 8, 6) and y.tolist() == [0, 1, 2, 3]
assert F.normalize(x, 0.5, (0.5, 0.5, 0.5)).shape == (4, 3, 8, 6)
back = F.denormalize(F.normalize(x, gpuprep.IMAGENET_MEAN, gpuprep.IMAGENET_STD),
                     gpuprep.IMAGENET_MEAN, gpuprep.IMAGENET_STD)
assert torch.equal(back, x)
ragged = gpuprep.collate_ragged(imgs)
for geometry in ((gpuprep.Resize(6), gpuprep.CenterCrop(5)),
                 (gpuprep.RandomResizedCrop(5, interpolation="bicubic"),
                  gpuprep.RandomHorizontalFlip())):
    pre = gpuprep.Preprocess(geometry=geometry)
    assert pre(ragged).shape == (4, 3, 5, 5)
    assert pre(ragged, params=pre.sample(ragged)).shape == (4, 3, 5, 5)
assert F.crop_resize_normalize(x, [[0, 0, 4, 4]] * 4, 2, mean=0.5, std=0.5).shape == (4, 3, 2, 2)
gc = gpuprep.GPUCollate("cpu", preprocess=gpuprep.Preprocess(geometry=(gpuprep.Resize((4, 4)),)))
assert gc([(a, 0) for a in imgs])[0].shape == (4, 3, 4, 4)
for workers in (0, 2):
    loader = gpuprep.DataLoader(same, batch_size=2, device="cpu", num_workers=workers)
    assert [tuple(b.shape) for b, _ in loader] == [(2, 3, 8, 6)] * 2
try:
    gpuprep.Preprocess.from_torchvision("ResNet50_Weights.IMAGENET1K_V2")
except ImportError as e:
    assert "pip install torchvision" in str(e), e
else:
    raise AssertionError("from_torchvision worked without torchvision")
print("ok", sorted(m for m in ("kornia", "torchvision", "PIL") if sys.modules.get(m)))
"""


@pytest.mark.slow
def test_every_library_path_works_without_kornia_torchvision_and_pil():
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPTIONAL], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip() == "ok []", proc.stdout
