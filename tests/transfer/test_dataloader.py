"""gpuprep.DataLoader: one call for the recommended loader, every DataLoader keyword passed
through; and the Lightning recipe of the README, run by a real Trainer."""

from __future__ import annotations

import pytest
import torch
from helpers import (
    Distinct,
    check_images,
)
from torch import nn
from torch.utils.data import DistributedSampler

import gpuprep
from gpuprep import (
    DeviceLoader,
    GPUCollate,
    Preprocess,
)


@pytest.mark.parametrize("workers", [0, 2])
def test_what_it_builds(device, workers):
    loader = gpuprep.DataLoader(Distinct(10, (6, 5, 3)), 4, device=device, num_workers=workers)
    if workers:
        assert isinstance(loader, DeviceLoader)
        assert loader.loader.collate_fn is gpuprep.collate
        assert loader.loader.pin_memory == (device == "cuda")
        assert loader.loader.num_workers == workers
    else:
        assert isinstance(loader, torch.utils.data.DataLoader)
        assert isinstance(loader.collate_fn, GPUCollate) and not loader.pin_memory
    assert loader.device.type == device if workers else loader.collate_fn.device.type == device
    assert len(loader) == 3
    for _ in range(2):  # iterates again, like DeviceLoader
        labels = []
        for x, y in loader:
            assert x.device.type == device and y.device.type == device
            check_images(x, y.tolist(), (6, 5, 3))
            labels += y.tolist()
        assert labels == list(range(10))


@pytest.mark.parametrize("workers", [0, 2])
def test_keywords_pass_through(workers):
    g = torch.Generator().manual_seed(3)
    loader = gpuprep.DataLoader(
        Distinct(11, (6, 5, 3)),
        4,
        device="cpu",
        num_workers=workers,
        shuffle=True,
        drop_last=True,
        generator=g,
        preprocess=Preprocess(0.5, 0.5, dtype=torch.bfloat16),
        persistent_workers=workers > 0,
    )
    batches = list(loader)
    assert len(batches) == len(loader) == 2
    labels = [v for _, y in batches for v in y.tolist()]
    assert len(set(labels)) == 8 and labels != list(range(8))  # shuffled, last one dropped
    assert all(x.dtype == torch.bfloat16 for x, _ in batches)


@pytest.mark.parametrize("workers", [0, 2])
def test_set_epoch_reaches_a_distributed_sampler(workers):
    ds = Distinct(12, (6, 5, 3))
    sampler = DistributedSampler(ds, num_replicas=2, rank=0, shuffle=True, seed=0)
    loader = gpuprep.DataLoader(ds, 3, device="cpu", num_workers=workers, sampler=sampler)
    epochs = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        assert sampler.epoch == epoch
        shard = list(sampler)
        epochs.append([v for _, y in loader for v in y.tolist()])
        assert epochs[-1] == shard
    assert epochs[0] != epochs[1]


def test_dict_samples_and_image_key():
    data = [{"image": Distinct(10, (6, 5, 3))[i][0], "label": i} for i in range(4)]
    for workers in (0, 1):
        (batch,) = list(
            gpuprep.DataLoader(data, 4, device="cpu", image_key="image", num_workers=workers)
        )
        check_images(batch["image"], batch["label"].tolist(), (6, 5, 3))


def test_bad_arguments():
    with pytest.raises(TypeError, match="sets collate_fn itself"):
        gpuprep.DataLoader(Distinct(10, (6, 5, 3)), 2, collate_fn=gpuprep.collate)
    with pytest.raises(ValueError, match="pin_memory off with num_workers=0"):
        gpuprep.DataLoader(Distinct(10, (6, 5, 3)), 2, device="cpu", pin_memory=True)
    with pytest.raises(ValueError, match="Expected a device"):
        gpuprep.DataLoader(Distinct(10, (6, 5, 3)), 2, device="gpu")


# ------------------------------------------------------------------------- Lightning


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*")  # inside lightning, with newer torch
def test_lightning_recipe_runs(tmp_path):
    L = pytest.importorskip("lightning")

    class Classifier(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.preprocess = gpuprep.Preprocess()  # moves with the module, saved with it
            self.net = nn.Sequential(
                nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)
            )
            self.seen = []

        def on_after_batch_transfer(self, batch, dataloader_idx):
            images, labels = batch  # uint8 NHWC, already on self.device
            self.seen.append((images.dtype, images.shape, images.device))
            return self.preprocess(images), labels

        def training_step(self, batch, batch_idx):
            x, y = batch
            assert x.dtype == torch.float32 and x.shape[1] == 3
            return nn.functional.cross_entropy(self.net(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def loader():
        return torch.utils.data.DataLoader(
            Distinct(8, (6, 5, 3)), batch_size=4, num_workers=2, collate_fn=gpuprep.collate
        )

    model = Classifier()
    trainer = L.Trainer(
        fast_dev_run=True,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, train_dataloaders=loader(), val_dataloaders=loader())
    assert trainer.state.finished
    assert len(model.seen) == 2  # one training and one validation batch
    assert all(d == torch.uint8 and s == (4, 6, 5, 3) for d, s, _ in model.seen)
