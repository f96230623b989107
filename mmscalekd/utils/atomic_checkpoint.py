"""Crash-safe checkpoint writing for MMEngine's Runner (compat fix W4).

A checkpoint is written to a temporary file next to its final name, flushed to
disk and renamed over the final name with :func:`os.replace` (atomic on POSIX
and Windows for a rename within one folder). A crash while saving leaves the
previous files untouched and at most a stray ``.<name>.tmp-<pid>`` file, which
``--resume`` never reads. ``CheckpointHook`` is changed to update
``last_checkpoint`` (atomically as well) only after the new checkpoint is
complete, and to delete outdated checkpoints only after that.
"""
from __future__ import annotations

import io
import os
import os.path as osp
from typing import Any, Callable, Optional

import torch


def _is_local(path: str) -> bool:
    return '://' not in str(path) or str(path).startswith('file://')


def _atomic_write(path: str, write: Callable[[io.BufferedWriter], None]) -> None:
    path = str(path)
    if path.startswith('file://'):
        path = path[len('file://'):]
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.tmp-{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)`` that never leaves a partial file at ``path``.

    Args:
        obj: What to save.
        path (str): Local destination.
    """
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: str, text: str) -> None:
    """Replace the text file ``path`` by ``text`` atomically."""
    _atomic_write(path, lambda f: f.write(text.encode('utf-8')))


def apply_atomic_checkpoints() -> None:
    """Route the Runner's checkpoint writes and ``CheckpointHook``'s bookkeeping here."""
    import mmengine.runner.runner as runner_module
    from mmengine.dist import is_main_process
    from mmengine.hooks import CheckpointHook

    original_save: Callable = runner_module.save_checkpoint
    if getattr(original_save, '_mmscalekd_atomic', False):
        return

    def save_checkpoint(checkpoint: dict, filename: str, file_client_args: Optional[dict] = None,
                        backend_args: Optional[dict] = None) -> None:
        if file_client_args is None and backend_args is None and _is_local(filename):
            atomic_torch_save(checkpoint, filename)
        else:  # remote storage: MMEngine's backends
            original_save(checkpoint, filename, file_client_args=file_client_args,
                          backend_args=backend_args)

    save_checkpoint._mmscalekd_atomic = True  # type: ignore[attr-defined]
    runner_module.save_checkpoint = save_checkpoint

    def _save_checkpoint_with_step(self: CheckpointHook, runner: Any, step: int,
                                   meta: dict) -> None:
        # Same files and bookkeeping as MMEngine 0.10, in a crash-safe order: write the
        # new checkpoint, then point last_checkpoint at it, then delete outdated ones.
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, ckpt_filename, self.file_client_args,
            save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old_step in outdated:
            old = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step))
            if old == self.last_ckpt:
                continue
            if self.file_backend.isfile(old):
                self.file_backend.remove(old)
            elif self.file_backend.isdir(old):  # DeepSpeed checkpoints are folders
                self.file_backend.rmtree(old)

    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
