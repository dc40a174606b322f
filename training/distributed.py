"""Multi-process data-parallel training helpers (``torchrun`` + ``DistributedDataParallel``).

``torchrun --nproc_per_node N -m depth_pose_ros.cli train --config ...`` starts N processes with
``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` / ``MASTER_PORT`` in the environment;
:func:`init_distributed` reads them and joins the process group (``gloo`` on CPU, ``nccl`` on CUDA).
Without those variables everything degrades to a single process with the same code path.

Each rank reads a disjoint shard of every epoch (``training.dataset.ResumableSampler``, a
``DistributedSampler``), computes its loss, and DDP averages the gradients during ``backward`` so
every rank applies the same update: parameters stay identical without ever being re-broadcast.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from depth_pose_ros.nets.device import resolve_device


@dataclass
class DistInfo:
    """Where this process stands in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device_preference: str = "auto") -> DistInfo:
    """Join the torchrun process group when launched by it; a single-process DistInfo otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local)  # auto / cuda: this process's GPU
    if world <= 1:
        return DistInfo(0, 1, 0, device, "")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local, device, backend)


def shutdown(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_true(flag: bool, info: DistInfo) -> bool:
    """True only if ``flag`` is true on every rank (used so that all ranks skip a step together)."""
    if not info.distributed:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32,
                     device=info.device if info.backend == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def broadcast_buffers(module: nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank.

    DDP broadcasts buffers at the start of each forward, so after the last step every rank still holds
    the statistics of its own last batch; this makes the final models identical on all ranks.
    """
    if not info.distributed:
        return
    for buf in module.buffers():
        if buf.device.type == "cpu" and info.backend == "nccl":  # pragma: no cover - GPU only
            continue
        dist.broadcast(buf.data, src=0)


def wrap(module: nn.Module, info: DistInfo) -> nn.Module:
    """``DistributedDataParallel`` around ``module`` in a multi-process job, the module itself otherwise.

    ``find_unused_parameters`` is on because which parameters a step uses depends on the config (a
    PoseNet that a geometry-pose method never calls, modules frozen by a schedule stage); rebuild the
    wrapper whenever the set of trainable parameters changes (DDP registers them at construction).
    """
    if not info.distributed:
        return module
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)
