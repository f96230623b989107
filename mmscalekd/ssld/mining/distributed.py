"""Process groups for sharded mining, launched like training (torchrun, slurm, mpi).

Only small Python objects travel between the processes (which images are done, the
throughput, errors), so the group always uses gloo, also on GPU nodes: no NCCL watchdog
stops a rank that waits for a slower one. Every rank scores its own shard on its own device
and writes its own parts into the shared output folder; rank 0 merges.
"""
from __future__ import annotations

import datetime
import os
from typing import Any, Callable, List, Optional, TypeVar

import torch

from mmscalekd.utils.launch import LaunchError, check_launch_env, init_cpu_distributed

T = TypeVar('T')


class DistContext:
    """Rank, world size and the few collectives mining needs (a no-op in one process).

    Args:
        rank (int): This process. Defaults to 0.
        world_size (int): All processes. Defaults to 1.
        local_rank (int): This process on its node (its GPU). Defaults to 0.
    """

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0) -> None:
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.world_size > 1:
            torch.distributed.barrier()

    def broadcast(self, obj: Any = None) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.world_size == 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj: Any) -> List[Any]:
        """Every rank's ``obj``, in rank order."""
        if self.world_size == 1:
            return [obj]
        out: List[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 and give its result (or raise its error) on every rank."""
        result: Any = None
        error: Optional[BaseException] = None
        if self.is_main:
            try:
                result = fn()
            except Exception as err:  # noqa: BLE001  (re-raised on every rank below)
                error = err
        if self.world_size > 1:
            result, error = self.broadcast((result, error) if self.is_main else None)
        if error is not None:
            raise error
        return result

    def all_ok(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on every rank; if any rank fails, every rank raises the first error."""
        result: Any = None
        error: Optional[BaseException] = None
        try:
            result = fn()
        except Exception as err:  # noqa: BLE001  (re-raised below)
            error = err
        errors = self.all_gather(error)
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            if error is not None:
                raise error
            raise RuntimeError(f'another mining process failed: {first}') from first
        return result


def init_distributed(launcher: str, timeout_s: float = 12 * 3600.0) -> DistContext:
    """Start the process group of a sharded mining run.

    Args:
        launcher (str): ``'none'`` (one process), ``'pytorch'`` (torchrun,
            ``tools/ssld/dist_mine.sh``), ``'slurm'`` (srun, ``tools/ssld/slurm_mine.sh``) or
            ``'mpi'``.
        timeout_s (float): How long a collective may wait for the slowest rank. Defaults to
            12 h (a barrier waits while the other ranks finish their shards).

    Returns:
        DistContext: Rank, world size and local rank.

    Raises:
        LaunchError: The environment does not match ``launcher`` (from
            :func:`mmscalekd.utils.launch.check_launch_env`).
    """
    check_launch_env(launcher)
    if launcher == 'none':
        return DistContext()
    import torch.distributed as dist
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=timeout_s)
        if launcher == 'pytorch':
            dist.init_process_group('gloo', timeout=timeout)
        elif torch.cuda.is_available():
            from mmengine.dist import init_dist
            init_dist(launcher, backend='gloo', timeout=timeout)
        elif not init_cpu_distributed(launcher, backend='gloo'):
            raise LaunchError(f'could not start the {launcher} process group')
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get('LOCAL_RANK', os.environ.get('SLURM_LOCALID', 0)))
    return DistContext(rank, world, local)
