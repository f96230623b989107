"""MMEngine's CheckpointHook, crash-safe, NaN-aware and ready for exact resume in DDP."""
from __future__ import annotations

import itertools
import os
import os.path as osp
import warnings
from collections import deque
from typing import Any, List, Optional

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper

from mmscalekd.registry import HOOKS
from mmscalekd.utils.atomic_checkpoint import atomic_write_text, fsync_replace, temporary_name
from mmscalekd.utils.atomic_io import find_pid_temporaries

#: Message-hub keys (resumed with the checkpoint).
LAST_FINITE_KEY = 'last_finite_ckpt'
RETAINED_KEY = 'retained_finite_ckpt'

def remove_stale_temporaries(folder: str, logger: Any = None) -> List[str]:
    """Delete the ``.<name>.tmp-<pid>`` files of saves whose process is gone.

    A save killed while writing (SIGKILL, out of memory, node failure) leaves its
    temporary file behind; for a Swin-L distiller that is gigabytes. Files whose
    writer process still runs on this machine are left alone.

    Args:
        folder (str): Local folder to clean (missing folders are skipped).
        logger: Logger for one line per removed file. Defaults to None.

    Returns:
        list[str]: Paths removed.
    """
    removed: List[str] = []
    for tmp in find_pid_temporaries(folder):
        size = osp.getsize(tmp.path)
        os.remove(tmp.path)
        removed.append(tmp.path)
        if logger is not None:
            logger.warning(f'Removed {tmp.path} ({size / 2**20:.1f} MiB): the partial file of a '
                           f'save of {tmp.name!r} by process {tmp.pid}, which was killed '
                           'while writing it; the complete files are untouched.')
    return removed


def weights_are_finite(model: torch.nn.Module) -> bool:
    """Whether every floating-point parameter and buffer of ``model`` is finite."""
    flags = [torch.isfinite(t).all() for t in itertools.chain(model.parameters(), model.buffers())
             if t.is_floating_point() and t.numel()]
    return bool(torch.stack(flags).all()) if flags else True


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that never leaves a broken or NaN-only set of checkpoints.

    Same arguments, files and resume behaviour as MMEngine's
    :class:`~mmengine.hooks.CheckpointHook`, plus:

    * **Atomic files.** A local checkpoint is written to ``.<name>.tmp-<pid>`` in
      its folder, flushed to disk and renamed over ``<name>`` (``os.replace``,
      atomic within a folder); ``last_checkpoint`` is replaced the same way and
      only after the checkpoint is complete; outdated checkpoints are deleted
      only after that (MMEngine 0.10 deletes the oldest one first and writes
      both files in place, so a crash while saving can leave a truncated
      checkpoint that ``--resume`` picks, or none).
    * **Leftovers cleaned.** At the start of training, temporary files of saves
      whose process was killed are removed (one warning each).
    * **The last finite checkpoint stays.** Before each save the model's weights
      are checked; rotation (``max_keep_ckpts``) never deletes the newest
      checkpoint whose weights are all finite, even when newer checkpoints
      (with NaN/inf weights) push it out of the kept window, and
      ``NonFiniteLossHook`` names it when it stops a run. Its path is in the
      message hub as ``last_finite_ckpt``; the checkpoint's
      ``meta['finite_weights']`` says which kind it is.
    * **Model metadata.** A model with ``checkpoint_meta()`` adds its entries to
      ``meta``, and one with ``check_checkpoint_meta(meta)`` checks them before a
      checkpoint is loaded (resume, ``load_from``). ``ScaleKDDistiller``:
      ``meta['teacher']``, the teacher's checkpoint path and sha256; another
      teacher fails with ``TeacherMismatchError``.
    * **Exact resume in DDP without per-step collectives.** Right before a save,
      on every rank, :class:`ExactResumeHook` (if configured) gathers the RNG
      states of all ranks; nothing is exchanged on iterations that do not save.

    Remote backends (``backend_args``/``s3://``) and best checkpoints
    (``save_best``) are written by MMEngine's code as before. Outside the tested
    MMEngine range (``mmscalekd/utils/versions.py``) the hook warns once and is
    a plain ``CheckpointHook``.

    Args: as :class:`mmengine.hooks.CheckpointHook`.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from mmscalekd.utils.versions import TESTED, installed_version, is_tested
        self._safe = is_tested('mmengine')
        if not self._safe:
            low, high = TESTED['mmengine']
            warnings.warn(
                f'SafeCheckpointHook: mmengine {installed_version("mmengine")} is outside the '
                f'tested range >={low},<{high}; checkpoints are written by the stock '
                'CheckpointHook (not atomically, rotation may delete the last finite one).')

    # ----------------------------------------------------------------- helpers
    def _local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    @staticmethod
    def _model(runner) -> torch.nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def _path(self, step: int) -> str:
        return self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))

    def _remove(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # DeepSpeed checkpoints are folders
            self.file_backend.rmtree(path)

    # ------------------------------------------------------------------- hooks
    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._safe and self._local() and is_main_process():
            for folder in {self.out_dir, runner.work_dir}:
                remove_stale_temporaries(folder, runner.logger)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Let the model check the checkpoint's metadata before its weights are loaded."""
        check = getattr(self._model(runner), 'check_checkpoint_meta', None)
        if callable(check):
            check(checkpoint.get('meta') or {})

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        if not (self._safe and self._local()):
            return super()._save_checkpoint_with_step(runner, step, meta)
        hub = runner.message_hub
        main = is_main_process()
        filename = self.filename_tmpl.format(step)
        final = self.file_backend.join_path(self.out_dir, filename)

        finite = weights_are_finite(self._model(runner)) if main else True
        previous_finite: Optional[str] = hub.get_info(LAST_FINITE_KEY)
        last_finite = final if finite else previous_finite

        outdated: List[str] = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            kept = list(self.keep_ckpt_ids) + [step]
            while len(kept) > self.max_keep_ckpts:
                outdated.append(self._path(kept.pop(0)))
            self.keep_ckpt_ids = deque(kept, self.max_keep_ckpts)
            hub.update_info('keep_ckpt_ids', kept)
        # Decided before the save, so that the saved message hub already says it.
        retained: Optional[str] = hub.get_info(RETAINED_KEY)
        remove = [old for old in outdated if old not in (final, last_finite)]
        if last_finite in outdated:
            retained = last_finite
        elif finite and retained and retained != final and retained not in {
                self._path(s) for s in self.keep_ckpt_ids}:
            remove.append(retained)  # a newer finite checkpoint exists now
            retained = None
        if main:
            hub.update_info(LAST_FINITE_KEY, last_finite)
            hub.update_info(RETAINED_KEY, retained)
        self.last_ckpt = final
        hub.update_info('last_ckpt', final)

        from .exact_resume_hook import ExactResumeHook
        for hook in runner.hooks:  # on every rank: the only collective of exact resume
            if isinstance(hook, ExactResumeHook):
                hook.prepare_checkpoint(runner)

        if main:  # e.g. ScaleKDDistiller: the teacher record (meta['teacher'])
            extra = getattr(self._model(runner), 'checkpoint_meta', None)
            meta = dict(meta, **extra()) if callable(extra) else meta
        tmp = temporary_name(final)
        try:
            runner.save_checkpoint(
                self.out_dir, osp.basename(tmp), self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=dict(meta, finite_weights=finite), by_epoch=self.by_epoch,
                backend_args=self.backend_args, **self.args)
            if main:
                fsync_replace(tmp, final)
        except BaseException:
            if main and osp.exists(tmp):  # e.g. the disk filled up while writing
                os.remove(tmp)
            raise
        if not main:
            return
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), final)
        for old in remove:
            self._remove(old)
        if not finite:
            kept_note = (f'; {last_finite} is kept beyond max_keep_ckpts={self.max_keep_ckpts}'
                         if last_finite in outdated else '')
            runner.logger.warning(
                f'{final} holds NaN/inf weights. The newest checkpoint with finite weights is '
                f'{last_finite or "none (no finite checkpoint was saved)"}{kept_note}.')
