"""Launch checks shared by ``tools/train.py`` and ``tools/test.py``.

A distributed run that is started the wrong way usually fails deep inside
``torch.distributed`` with a ``KeyError`` or a CUDA error several screens long.
These helpers check the environment a launcher leaves behind *before* the Runner
is built and say what to do instead. On machines without CUDA they also start
the process group with gloo, for every launcher, before the Runner is built:
MMEngine 0.10's initialisers (``mmengine/dist/utils.py``, ``_init_dist_pytorch``
and its slurm/MPI siblings) call ``torch.cuda.set_device`` first, which fails on
a CPU-only build, and the Runner skips its own initialisation when a process
group already exists. Nothing in MMEngine is replaced.
"""
from __future__ import annotations

import os
import re
import subprocess
from typing import Mapping, Optional

import torch

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')

# What each launcher must leave in the environment of every process.
_REQUIRED_ENV = {
    'pytorch': ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'),
    'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
    'mpi': ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK'),
}

_HOW_TO_START = {
    'pytorch': ('start it with `bash tools/dist_train.sh CONFIG NUM_PROCS` (dist_test.sh to '
                'evaluate) or `python -m torch.distributed.run --nproc_per_node=NUM_PROCS '
                'tools/train.py CONFIG --launcher pytorch`'),
    'slurm': ('start it with srun, e.g. `bash tools/slurm_train.sh PARTITION JOB CONFIG '
              'WORK_DIR` (slurm_test.sh to evaluate)'),
    'mpi': 'start it with `mpirun -np NUM_PROCS python tools/train.py CONFIG --launcher mpi`',
}


class LaunchError(RuntimeError):
    """The process was started in a way that does not match ``--launcher``."""


def _procs_per_node(launcher: str, env: Mapping[str, str]) -> Optional[int]:
    """Number of processes the launcher put on this node, if it says."""
    if launcher == 'pytorch' and env.get('LOCAL_WORLD_SIZE'):
        return int(env['LOCAL_WORLD_SIZE'])
    if launcher == 'slurm' and env.get('SLURM_NTASKS_PER_NODE'):
        # e.g. '8' or '8(x4)' (8 tasks on each of 4 nodes) or '8,4'.
        match = re.match(r'\d+', env['SLURM_NTASKS_PER_NODE'])
        return int(match.group()) if match else None
    if launcher == 'mpi' and env.get('OMPI_COMM_WORLD_LOCAL_SIZE'):
        return int(env['OMPI_COMM_WORLD_LOCAL_SIZE'])
    return None


def _local_rank(launcher: str, env: Mapping[str, str]) -> Optional[int]:
    key = {'pytorch': 'LOCAL_RANK', 'slurm': 'SLURM_LOCALID',
           'mpi': 'OMPI_COMM_WORLD_LOCAL_RANK'}.get(launcher)
    return int(env[key]) if key and env.get(key) else None


def check_launch_env(launcher: str, env: Optional[Mapping[str, str]] = None,
                     num_gpus: Optional[int] = None) -> None:
    """Check that the environment matches ``launcher`` before anything is built.

    Args:
        launcher (str): One of ``'none'``, ``'pytorch'``, ``'slurm'``, ``'mpi'``.
        env (Mapping[str, str], optional): Environment to check. Defaults to
            ``os.environ``.
        num_gpus (int, optional): Visible CUDA devices. Defaults to
            ``torch.cuda.device_count()`` when CUDA is available, else 0 (no
            GPU-count check: CPU processes use gloo).

    Raises:
        ValueError: ``launcher`` is not one of the accepted names.
        LaunchError: A variable the launcher sets is missing, a torchrun world
            is started with ``--launcher none``, or more processes are put on
            this node than it has GPUs.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}, got {launcher!r}')
    env = os.environ if env is None else env
    if num_gpus is None:
        num_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0

    if launcher == 'none':
        world = int(env.get('WORLD_SIZE', '1') or 1)
        if world > 1:
            raise LaunchError(
                f'This process belongs to a distributed world (WORLD_SIZE={world}) but '
                '--launcher is "none", so every process would train on its own and '
                'overwrite the same work dir. Add `--launcher pytorch` (tools/dist_train.sh '
                'does this for you).')
        return

    missing = [key for key in _REQUIRED_ENV[launcher] if key not in env]
    if missing:
        raise LaunchError(
            f'--launcher {launcher} needs the environment variables its launcher sets, '
            f'but {", ".join(missing)} {"is" if len(missing) == 1 else "are"} not set: '
            f'{_HOW_TO_START[launcher]}. For a single process use `--launcher none`.')

    if num_gpus > 0:
        per_node = _procs_per_node(launcher, env)
        local_rank = _local_rank(launcher, env)
        visible = env.get('CUDA_VISIBLE_DEVICES')
        where = f' (CUDA_VISIBLE_DEVICES={visible})' if visible is not None else ''
        if per_node is not None and per_node > num_gpus:
            raise LaunchError(
                f'{per_node} processes were started on this node but only {num_gpus} CUDA '
                f'GPU(s) are visible{where}; each process needs its own GPU. Start at most '
                f'{num_gpus} processes per node (GPUS / --nproc_per_node / '
                'GPUS_PER_NODE).')
        if local_rank is not None and local_rank >= num_gpus:
            raise LaunchError(
                f'Local rank {local_rank} has no GPU: only {num_gpus} CUDA GPU(s) are '
                f'visible{where}. Start at most {num_gpus} processes per node.')


def init_cpu_distributed(launcher: str, backend: str = 'gloo', env: Optional[dict] = None,
                         timeout: Optional[float] = None) -> bool:
    """Start the process group with gloo on a machine without CUDA.

    For ``--launcher pytorch`` (torchrun) the launcher's ``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` are used as they are; for
    slurm and MPI the launcher's variables are translated to those the way
    MMEngine does it. Nothing happens with CUDA (MMEngine starts nccl itself),
    for ``'none'``, or when a group already exists.

    Args:
        launcher (str): The ``--launcher`` value.
        backend (str): Ignored unless ``'gloo'`` or ``'mpi'``; anything else
            (nccl) needs CUDA and is replaced by gloo. Defaults to ``'gloo'``.
        env (dict, optional): Environment to read and update. Defaults to
            ``os.environ``.
        timeout (float, optional): Seconds a collective may wait, as
            ``env_cfg.dist_cfg.timeout`` in MMEngine. Defaults to torch's.

    Returns:
        bool: Whether this function started the process group.
    """
    import datetime

    import torch.distributed as dist
    if torch.cuda.is_available() or launcher not in ('pytorch', 'slurm', 'mpi'):
        return False
    if dist.is_available() and dist.is_initialized():
        return False
    env = os.environ if env is None else env
    if launcher == 'pytorch':
        rank, world = env['RANK'], env['WORLD_SIZE']
    elif launcher == 'slurm':
        rank, world = env['SLURM_PROCID'], env['SLURM_NTASKS']
        local_rank = env.get('SLURM_LOCALID', '0')
        if 'MASTER_ADDR' not in env:
            hosts = subprocess.run(['scontrol', 'show', 'hostname', env['SLURM_NODELIST']],
                                   capture_output=True, text=True, check=True).stdout
            env['MASTER_ADDR'] = hosts.split()[0]
    else:
        rank, world = env['OMPI_COMM_WORLD_RANK'], env['OMPI_COMM_WORLD_SIZE']
        local_rank = env['OMPI_COMM_WORLD_LOCAL_RANK']
        if 'MASTER_ADDR' not in env:
            raise LaunchError('--launcher mpi needs MASTER_ADDR (the address of rank 0); '
                              'export it before mpirun.')
    if launcher != 'pytorch':
        env.setdefault('MASTER_PORT', '29500')  # torch.distributed's default port
        env.update(RANK=rank, WORLD_SIZE=world, LOCAL_RANK=local_rank)
    if backend not in ('gloo', 'mpi'):
        backend = 'gloo'
    kwargs = {}
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    dist.init_process_group(backend=backend, rank=int(rank), world_size=int(world),
                            init_method=f'tcp://{env["MASTER_ADDR"]}:{env["MASTER_PORT"]}',
                            **kwargs)
    return True


def init_cpu_distributed_from_cfg(launcher: str, cfg: Mapping) -> bool:
    """:func:`init_cpu_distributed` with the backend and timeout of ``cfg.env_cfg.dist_cfg``."""
    dist_cfg = (cfg.get('env_cfg') or {}).get('dist_cfg') or {}
    return init_cpu_distributed(launcher, dist_cfg.get('backend', 'gloo'),
                                timeout=dist_cfg.get('timeout'))


def shutdown_distributed(launcher: str) -> None:
    """End a run of ``--launcher pytorch|slurm|mpi`` cleanly: barrier, then destroy the group.

    Called by the tools on their normal way out (not after an error, where another rank may
    be gone and a barrier would wait for it). Without it the process group lives until the
    interpreter tears down, and gloo's worker threads can then abort the process after the
    work is done ("terminate called without an active exception", exit by SIGABRT), which a
    launcher reports as a failed rank. Nothing happens for ``'none'`` or without a group.

    Args:
        launcher (str): The tool's ``--launcher`` value.
    """
    import torch.distributed as dist
    if launcher == 'none' or not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
