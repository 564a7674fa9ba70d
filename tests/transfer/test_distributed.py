"""torch.distributed with torchrun: 2 processes, gloo, DistributedSampler under DeviceLoader."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

WORKER = os.path.join(os.path.dirname(__file__), "dist_worker.py")


@pytest.mark.slow
def test_two_ranks_get_disjoint_shards_that_cover_the_dataset(tmp_path):
    env = dict(os.environ)
    two_gpus = torch.cuda.is_available() and torch.cuda.device_count() >= 2
    if not two_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""  # one GPU cannot serve two ranks: use the CPU
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        "--nproc_per_node=2",
        WORKER,
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = json.loads((tmp_path / "result.json").read_text())
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    for epoch in (0, 1):
        shards = [set(r["epochs"][epoch]) for r in ranks]
        assert not shards[0] & shards[1], "ranks saw the same sample"
        assert shards[0] | shards[1] == set(range(50)), "the ranks missed samples"
    for r in ranks:
        assert r["epochs"][0] != r["epochs"][1], "set_epoch did not reshuffle"
        expected = f"cuda:{r['local_rank']}" if two_gpus else "cpu"
        assert r["device"] == expected
