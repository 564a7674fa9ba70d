"""Sizes and inputs for the benchmark suite: ``pytest benchmarks/ --benchmark-only``.

Defaults: 256 images of 224 x 224 x 3 uint8; change with --bench-batch and --bench-size.
Three different input lists are used in turn, so no run meets its own data still in cache.
"""

import itertools

import pytest
import torch

from gpuprep.bench.inputs import make_images

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_addoption(parser):
    parser.addoption("--bench-batch", type=int, default=256, help="images per batch")
    parser.addoption("--bench-size", type=int, nargs=2, default=(224, 224), help="H W")


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sizes(request):
    h, w = request.config.getoption("--bench-size")
    return request.config.getoption("--bench-batch"), h, w, 3


@pytest.fixture(scope="session")
def image_sets(sizes):
    return make_images(*sizes, sets=3)


@pytest.fixture
def rotating(image_sets):
    """A pedantic ``setup`` that hands each round the next input list."""
    cycle = itertools.cycle(image_sets)
    return lambda: ((next(cycle),), {})


def images_per_s(benchmark, n):
    benchmark.extra_info["images_per_s"] = n / benchmark.stats.stats.median
