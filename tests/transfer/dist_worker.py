"""Run by tests/test_distributed.py under torchrun: one DeviceLoader per rank over a
DataLoader with DistributedSampler. Rank 0 writes what every rank saw to OUT/result.json."""

import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

import gpuprep

N = 50


class Images(Dataset):
    def __len__(self):
        return N

    def __getitem__(self, i):
        return np.full((6, 7, 3), i, np.uint8), i


def main(out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    sampler = DistributedSampler(Images(), shuffle=True, seed=0)
    base = DataLoader(
        Images(), batch_size=4, sampler=sampler, num_workers=1, collate_fn=gpuprep.collate
    )
    loader = gpuprep.DeviceLoader(base)  # device=None: cuda:$LOCAL_RANK, or the CPU
    mean = torch.tensor(gpuprep.IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(gpuprep.IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    epochs = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        labels = []
        for x, y in loader:
            assert x.device == loader.device, (x.device, loader.device)
            expected = (y.cpu().double().view(-1, 1, 1, 1) / 255 - mean) / std
            torch.testing.assert_close(x.cpu().double(), expected.expand_as(x), rtol=0, atol=1e-5)
            labels += y.tolist()
        epochs.append(labels)
    report = {
        "rank": rank,
        "local_rank": int(os.environ["LOCAL_RANK"]),
        "device": str(loader.device),
        "epochs": epochs,
    }
    gathered = [None] * world
    dist.all_gather_object(gathered, report)
    if rank == 0:
        with open(os.path.join(out_dir, "result.json"), "w") as f:
            json.dump(gathered, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
