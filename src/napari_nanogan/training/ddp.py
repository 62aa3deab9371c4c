"""Data-parallel training under ``torchrun``: one process per CPU socket or GPU, one model, one checkpoint.

``torchrun --nproc_per_node N $(command -v nanogan) train ...`` starts N processes;
each finds its place in the environment torchrun sets (:func:`world_from_env`), joins
the process group (:func:`process_group`: gloo on CPUs, nccl on GPUs) and trains a
:class:`~torch.nn.parallel.DistributedDataParallel` copy of the network on its share
of every global batch. Every process draws the same global batch from the same
(seed, step) stream and keeps its share, so the batches are those of one process with
the same ``--batch-size``. Losses that are not plain means over the batch (the soft
Dice, a weighted BCE) are summed over the processes with :meth:`World.sum`, so the
gradient after DDP's averaging is the one-process gradient of the global batch.
Process 0 validates and writes the checkpoints; all processes resume from them.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: the default)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        """Whether this process validates, writes checkpoints and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def device(self) -> torch.device:
        """cuda:LOCAL_RANK with the nccl backend, else the CPU."""
        if self.backend == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def share(self, batch: int) -> slice:
        """This process's rows of a global batch of ``batch``."""
        if batch % self.size:
            raise ValueError(f"the global batch ({batch}) must be a multiple of the number of processes ({self.size})")
        n = batch // self.size
        return slice(self.rank * n, (self.rank + 1) * n)

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """The sum of ``x`` over the processes; its gradient flows into this process's ``x``, scaled so that
        DDP's averaging of the gradients gives the gradient of the sum."""
        if not self.distributed:
            return x
        total = x.detach().clone()
        dist.all_reduce(total)
        return x * self.size + (total - x.detach() * self.size)

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of ``x`` over the processes, with this process's gradient (DDP averages it)."""
        if not self.distributed:
            return x
        total = x.detach().clone()
        dist.all_reduce(total)
        return x + (total / self.size - x.detach())

    def any(self, flag: bool) -> bool:
        """True on every process when it is True on one (a stop asked of one process stops all at the same step)."""
        if not self.distributed:
            return bool(flag)
        value = torch.tensor([1.0 if flag else 0.0], device=self.device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def barrier(self) -> None:
        """Wait until every process is here (process 0's checkpoint written before the others read it)."""
        if self.distributed:
            dist.barrier(device_ids=[self.local_rank] if self.backend == "nccl" else None)

    def describe(self) -> str:
        if not self.distributed:
            return "1 process"
        where = "GPU" if self.backend == "nccl" else "CPU"
        return f"{self.size} processes (DistributedDataParallel, {self.backend} on {where})"


#: One process, no process group.
SINGLE = World()


def world_from_env(environ=None) -> World:
    """This process's :class:`World` from torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (one process without them)."""
    env = os.environ if environ is None else environ
    size = int(env.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    return World(int(env.get("RANK", "0")), size, int(env.get("LOCAL_RANK", "0")), backend)


@contextlib.contextmanager
def process_group(world: World | None = None, *, timeout_minutes: float = 120.0):
    """Join the process group for the duration (no-op for one process); yields the :class:`World`.

    The timeout covers process 0 validating while the others wait.
    """
    world = world or world_from_env()
    if not world.distributed or dist.is_initialized():
        yield world
        return
    if world.backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(world.backend, rank=world.rank, world_size=world.size,
                            timeout=datetime.timedelta(minutes=timeout_minutes))
    try:
        yield world
    finally:
        dist.destroy_process_group()


def wrap(network: torch.nn.Module, world: World) -> torch.nn.Module:
    """``network`` as DDP for several processes (as it is for one). Batch norm is synchronised on GPUs; on CPUs
    batch-norm statistics stay per process (group norm, the default, has none)."""
    if not world.distributed:
        return network
    from torch.nn.parallel import DistributedDataParallel

    if world.backend == "nccl":
        network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)
        return DistributedDataParallel(network, device_ids=[world.local_rank])
    return DistributedDataParallel(network)
