"""torch.distributed for evalkit: which process this is, its share of the work, and combining what ranks made.

Launch with torchrun, which sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous; evalkit never schedules
processes itself:

    torchrun --nproc-per-node 2 -m evalkit run --model imagen --benchmark toyworld --limit 8
    torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m evalkit score RUN ...

Without those variables everything here is the identity of a world of one (no process group is made), so the
same code path serves one process and many. The backend is gloo on CPU and nccl on CUDA devices (each rank then
uses ``cuda:LOCAL_RANK``).

Sharding is by position, ``items[rank::size]``: deterministic, balanced to within one item, and independent of
timing, so reruns with any number of ranks share out exactly what is still missing. Results come back in the
original order (``gather_rows``), so a metric over N ranks sees the very features a single process would.
``all_ok`` turns one rank's failure into the same one-line error on every rank, naming the rank, so no rank
waits forever at a barrier for a rank that died of a user error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

import numpy as np

from evalkit.errors import EvalkitError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise EvalkitError(f"environment variable {name}={value!r} is not an integer (set by torchrun)") from None


def current() -> World:
    """The world torchrun described in the environment (a world of one without it)."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise EvalkitError(f"RANK={rank} and WORLD_SIZE={size} do not describe a process of a torchrun world")
    return World(rank, size, _env_int("LOCAL_RANK", rank))


def active() -> World:
    """The world of the process group this process has joined (``init``), else a world of one. Library code asks
    this, not the environment, so a function called outside a launched command is never sharded."""
    try:
        import torch.distributed as dist
    except ImportError:
        return World()
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return current()


def rank_device(device: str, world: World) -> str:
    """Each rank's own GPU: ``cuda`` becomes ``cuda:LOCAL_RANK`` in a distributed run (an explicit index is kept)."""
    return f"cuda:{world.local_rank}" if world.distributed and device == "cuda" else device


def init(device: str = "cpu") -> World:
    """Join the process group once (gloo on CPU, nccl on CUDA); a world of one joins nothing."""
    world = current()
    if not world.distributed:
        return world
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            import torch

            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend=backend)
    return world


def shard(items: Sequence[T], world: World) -> list[T]:
    return list(items[world.rank::world.size])


def barrier(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's ``obj`` on every rank (picklable; small objects such as a list of image keys)."""
    if not world.distributed:
        return obj
    import torch.distributed as dist

    box = [obj if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_true(flag: bool, world: World) -> bool:
    """Whether ``flag`` holds on every rank (every rank gets the same answer)."""
    if not world.distributed:
        return bool(flag)
    import torch.distributed as dist

    flags: list[Any] = [None] * world.size
    dist.all_gather_object(flags, bool(flag))
    return all(flags)


class RankFailure(EvalkitError):
    """A failure every rank raises together (see ``all_ok``); the command prints it once, on rank 0."""


def all_ok(error: BaseException | None, world: World, what: str) -> None:
    """Every rank says whether ``what`` failed on it; any failure is re-raised on every rank as one line naming the
    first failing rank, so all ranks stop together instead of hanging at the next collective."""
    if not world.distributed:
        if error is not None:
            raise error
        return
    import torch.distributed as dist

    messages: list[Any] = [None] * world.size
    dist.all_gather_object(messages, None if error is None else str(error))
    failed = [(rank, message) for rank, message in enumerate(messages) if message is not None]
    if failed:
        rank, message = failed[0]
        others = f" (and {len(failed) - 1} other rank(s))" if len(failed) > 1 else ""
        raise RankFailure(f"{what} failed on rank {rank} of {world.size}{others}: {message}")


def gather_objects(obj: Any, world: World) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not world.distributed:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def gather_rows(rows: np.ndarray, world: World, total: int) -> np.ndarray:
    """Every rank's ``rows`` for its ``shard`` of ``total`` items, back in the items' original order, on every rank.

    Rank r holds items r, r + size, r + 2 size, ...; its block is interleaved back into that order. The arrays
    travel as pickled objects: gloo and nccl both carry them, and feature blocks are a few MB per rank."""
    if not world.distributed:
        return rows
    import torch.distributed as dist

    blocks: list[Any] = [None] * world.size
    dist.all_gather_object(blocks, np.ascontiguousarray(rows))
    out = np.empty((total,) + tuple(rows.shape[1:]), dtype=rows.dtype)
    for rank, block in enumerate(blocks):
        out[rank::world.size] = block
    return out


def all_reduce_sum(values: np.ndarray, world: World) -> np.ndarray:
    """Element-wise sum over ranks, in float64 (streaming statistics: counts, sums, sums of outer products)."""
    if not world.distributed:
        return values
    import torch
    import torch.distributed as dist

    tensor = torch.from_numpy(np.asarray(values, dtype=np.float64).copy())
    if dist.get_backend() == "nccl":  # nccl reduces only tensors on the rank's GPU
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy()


DISTRIBUTED_COMMANDS = ("run", "score", "distance", "fid", "ref-stats")


def start_command(command: str, device: str | None) -> World:
    """Join the torchrun world for one `evalkit COMMAND` (a world of one without torchrun)."""
    world = current()
    if world.distributed and command not in DISTRIBUTED_COMMANDS:
        raise EvalkitError(f"`evalkit {command}` runs in one process; under torchrun only "
                           f"{', '.join(DISTRIBUTED_COMMANDS)} are distributed")
    return init(device or "cpu") if world.distributed else world


def end_command() -> None:
    try:
        import torch.distributed as dist
    except ImportError:
        return
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
