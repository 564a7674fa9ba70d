"""The README's Lightning recipe, read from README.md and run as written by a real Trainer.

The test supplies only what the block leaves to the reader (``train_set``, ``val_set``,
``net``: a few photos of different sizes and a tiny model) and, through
``lightning.Trainer``, the arguments of a quick, quiet run here (``fast_dev_run=True``: one
training and one validation batch; the CPU; no logger, checkpoint or progress bar)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from helpers import Photos
from torch import nn

import gpuprep

README = Path(__file__).resolve().parents[1] / "README.md"
SIZES = [(37, 52), (60, 41), (45, 45), (33, 80), (71, 50), (40, 64)]


def readme_block(heading: str) -> str:
    """The first ```python block of the README section ``## heading``."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


class Recorder(nn.Module):
    """A tiny classifier that records what it is given, and in which mode."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 4, 5, stride=4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)
        )
        self.seen: list[tuple[torch.Tensor, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((x.detach().clone(), self.training))
        return self.body(x)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*")  # inside lightning, with newer torch
@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 8 workers on fewer cores
def test_lightning_recipe_runs(tmp_path, monkeypatch, caplog):
    lightning = pytest.importorskip("lightning")
    monkeypatch.chdir(tmp_path)
    for name in ("lightning.pytorch", "lightning.fabric"):
        caplog.set_level(logging.WARNING, logger=name)
    made = []

    def trainer(*args, **kwargs):
        made.append(
            Trainer(
                *args,
                **kwargs,
                fast_dev_run=True,
                accelerator="cpu",
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                default_root_dir=str(tmp_path),
            )
        )
        return made[-1]

    Trainer = lightning.Trainer
    monkeypatch.setattr(lightning, "Trainer", trainer)
    net = Recorder()
    block = readme_block("Lightning")
    exec(
        compile(block, str(README), "exec"),
        {"train_set": Photos(SIZES), "val_set": Photos(SIZES), "net": net},
    )

    (run,) = made
    assert run.state.finished
    (x_train, training), (x_val, evaluating) = net.seen  # one training, one validation batch
    assert training and not evaluating
    assert x_train.shape == x_val.shape == (len(SIZES), 3, 224, 224)
    # validation took the eval geometry: Resize(256), CenterCrop(224), in dataset order
    images = gpuprep.collate_ragged([Photos(SIZES)[i] for i in range(len(SIZES))])[0]
    evaluate = gpuprep.Preprocess(geometry=(gpuprep.Resize(256), gpuprep.CenterCrop(224)))
    assert torch.equal(x_val, evaluate(images))
