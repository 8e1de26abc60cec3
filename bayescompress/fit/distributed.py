"""Data-parallel fits under ``torchrun``: one process per rank, gradients averaged before each step.

Outside ``torchrun`` (no WORLD_SIZE in the environment, or WORLD_SIZE=1) everything here is a
no-op, so the same training loop serves one process and many.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch

from ..errors import BayesCompressError

T = TypeVar("T")
TIMEOUT = datetime.timedelta(hours=2)  # rank 0 may count a large corpus while the others wait


@dataclass
class ProcessGroup:
    """This process's place in a data-parallel fit (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on the rank that writes outputs and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def average_gradients(self, parameters: list[torch.Tensor], loss: torch.Tensor) -> float:
        """Replace every parameter's gradient by its mean over ranks; return the mean loss.

        One all-reduce of a flat buffer (all gradients and the loss) per step.
        """
        if not self.distributed:
            return float(loss.detach())
        grads = [_dense(p.grad) if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = torch.cat([g.reshape(-1) for g in grads] + [loss.detach().reshape(1).to(grads[0].dtype)])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for parameter, grad in zip(parameters, grads, strict=True):
            size = grad.numel()
            average = flat[offset:offset + size].view_as(grad).clone()
            # row-sparse gradients stay row-sparse: rows that any rank touched
            sparse = parameter.grad is not None and parameter.grad.is_sparse
            parameter.grad = average.to_sparse(sparse_dim=1) if sparse else average
            offset += size
        return float(flat[-1])

    def broadcast_(self, tensors: list[torch.Tensor]) -> None:
        """Overwrite ``tensors`` in place with rank 0's values."""
        if self.distributed:
            for tensor in tensors:
                torch.distributed.broadcast(tensor.data, src=0)

    def rank0_first(self, work: Callable[[], T]) -> T:
        """Run ``work`` on rank 0, then on the other ranks (which then find rank 0's cache).

        A BayesCompressError on rank 0 is re-raised there and stops the others with a one-line
        error instead of leaving them waiting.
        """
        if not self.distributed:
            return work()
        failure = None
        result = None
        if self.is_main:
            try:
                result = work()
            except BayesCompressError as exc:
                failure = exc
        flag = torch.tensor([0 if failure is None else 1], device=self.device)
        torch.distributed.broadcast(flag, src=0)
        if failure is not None:
            raise failure
        if int(flag.item()):
            raise BayesCompressError(f"rank {self.rank}: stopped because rank 0 failed (see its message)")
        if not self.is_main:
            result = work()
        return result


def _dense(grad: torch.Tensor) -> torch.Tensor:
    return grad.coalesce().to_dense() if grad.is_sparse else grad


def device_for(name: str, local_rank: int = 0) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` as a torch device; a missing GPU is a one-line error."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise BayesCompressError(f"--device {name}: not a device name (use cpu or cuda)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BayesCompressError(f"--device {name}: no CUDA device is available on this machine")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
    elif device.type != "cpu":
        raise BayesCompressError(f"--device {name}: only cpu and cuda are supported")
    return device


@contextlib.contextmanager
def process_group(device_name: str = "cpu") -> Iterator[ProcessGroup]:
    """The process group ``torchrun`` describes in the environment, torn down on exit.

    Uses gloo on CPU and nccl on GPU. Without WORLD_SIZE > 1 it yields a single-process group.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = device_for(device_name, local_rank)
    if world_size <= 1:
        yield ProcessGroup(device=device)
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.distributed.init_process_group(backend=backend, timeout=TIMEOUT)
    try:
        yield ProcessGroup(rank=torch.distributed.get_rank(), world_size=torch.distributed.get_world_size(),
                           local_rank=local_rank, backend=backend, device=device)
        _leave_together()  # reached only when this rank's work completed
    finally:
        torch.distributed.destroy_process_group()


def _leave_together() -> None:
    """Wait for every rank before tearing the group down.

    A rank that tears its group down while rank 0 still writes the posterior can abort in gloo's
    teardown (SIGABRT seen once in CI on rank 1).
    """
    try:
        torch.distributed.barrier()
    except RuntimeError:  # a rank that failed after training closed its connections
        raise BayesCompressError(f"rank {torch.distributed.get_rank()}: stopped because another rank "
                                 "failed (see its message)") from None
