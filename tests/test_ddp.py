"""Data-parallel training (torchrun, DistributedDataParallel over gloo): the same weights as one process.

Two processes on the CPU train a tiny segmenter a few steps with a global batch of 4
(2 each); one process trains it with a batch of 4. The weights must agree within float
tolerance, through a resume, with the contact-weighted loss (a weighted BCE and the
soft Dice are sums over the global batch, not per-process means).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from napari_nanogan.config import SegmenterConfig, TrainConfig
from napari_nanogan.models.checkpoint import load_checkpoint
from napari_nanogan.training.ddp import SINGLE, World, world_from_env

SMALL = SegmenterConfig(base_channels=4, depth=3)


def _samples():
    from napari_nanogan.data.datasets import Sample
    from napari_nanogan.data.procedural import particle_labels, render_sem

    out = []
    for seed in range(3):
        labels = particle_labels((96, 128), n_particles=15, mean_diameter=14, seed=seed)
        image = render_sem(labels, seed=seed)
        out.append(Sample(f"s{seed}", image, labels, float(np.percentile(image, 1)), float(np.percentile(image, 99.8)),
                          "sem"))
    return {"sem": out}


def _train(out_dir, world: World, steps: int) -> list:
    from napari_nanogan.training.segmenter import train_segmenter

    config = TrainConfig(steps=steps, batch_size=4, patch_size=48, val_every=1000, checkpoint_every=1000,
                         warmup_steps=1, lr=3e-3, contact_weight=2.0)
    return list(train_segmenter(_samples(), [], out_dir=out_dir, config=config, model_config=SMALL, world=world,
                                device="cpu"))


def _worker(rank: int, size: int, store: str, out_dir: str, queue) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    # a file store, not a TCP one hosted by process 0: process 0 leaving first cannot abort the other
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=size)
    try:
        world = World(rank, size, rank, "gloo")
        first = _train(out_dir, world, 2)
        second = _train(out_dir, world, 3)  # resumes from last.pt, written by process 0 only
        queue.put((rank, [r.losses for r in first + second]))
        dist.barrier()  # both done before either tears the group down
    finally:
        dist.destroy_process_group()


def test_world_from_torchrun_environment():
    assert world_from_env({}) == SINGLE and not SINGLE.distributed and SINGLE.share(4) == slice(0, 4)
    world = world_from_env({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    assert (world.rank, world.size, world.main) == (1, 2, False) and world.share(4) == slice(2, 4)
    assert world.describe().startswith("2 processes (DistributedDataParallel")
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        world.share(3)


def test_two_processes_train_the_weights_one_process_trains_with_the_global_batch(tmp_path):
    from napari_nanogan.models.attention_unet import AttentionUNet

    torch.set_num_threads(1)
    single = _train(tmp_path / "one", SINGLE, 2) + _train(tmp_path / "one", SINGLE, 3)
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    store = tmp_path / "store"
    procs = [ctx.Process(target=_worker, args=(rank, 2, str(store), str(tmp_path / "ddp"), queue)) for rank in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    losses = dict(queue.get() for _ in range(2))
    # every process reports the global batch's losses, and they are one process's
    assert len(single) == len(losses[0]) == len(losses[1]) == 3
    for k, record in enumerate([r.losses for r in single]):
        for rank in (0, 1):
            for term in ("bce", "dice", "total"):
                assert losses[rank][k][term] == pytest.approx(record[term], rel=1e-4, abs=1e-6)
    one = load_checkpoint(tmp_path / "one" / "best.pt", kind="segmenter")
    two = load_checkpoint(tmp_path / "ddp" / "best.pt", kind="segmenter")
    assert two["provenance"]["processes"] == {"count": 2, "backend": "gloo", "batch_per_process": 2}
    assert two["provenance"]["step"] == one["provenance"]["step"] == 3
    torch.manual_seed(0)
    start = AttentionUNet(SMALL).state_dict()
    changed = 0
    for name, value in one["state_dict"].items():
        torch.testing.assert_close(two["state_dict"][name], value, rtol=1e-4, atol=1e-5, msg=name)
        changed += not torch.equal(value, start[name])
    assert changed > len(start) // 2  # three steps moved the weights


def test_under_torchrun_train_checks_the_batch_and_the_gan_and_finetune_refuse(monkeypatch, tmp_path, capsys):
    from napari_nanogan.cli import main

    for key, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(key, value)
    assert main(["train", "--out", str(tmp_path), "--batch-size", "3"]) == 2
    assert "must be a multiple of the 2 processes" in capsys.readouterr().err
    assert main(["train-gan", "--out", str(tmp_path)]) == 2
    assert "trains in one process" in capsys.readouterr().err
    assert main(["finetune", "--images", "a.tif", "--masks", "a.tif", "--out", str(tmp_path / "m.pt")]) == 2
    assert "Data-parallel training: nanogan train" in capsys.readouterr().err
