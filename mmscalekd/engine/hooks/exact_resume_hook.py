"""Saves what MMEngine's checkpoints lack for an exact resume: RNG states and data position."""
from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional

from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook

from mmscalekd.registry import HOOKS

from ..runner.resume_state import capture_rng_state, restore_rng_state

#: Key of our state in a Runner checkpoint.
CHECKPOINT_KEY = 'exact_resume'


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Store RNG states and the data position in every checkpoint; hand them back on resume.

    MMEngine restores weights, optimizer, schedulers and the message hub, but a
    run resumed in the middle of an epoch differs from an uninterrupted one:
    the Python / NumPy / torch RNG states (random augmentation, stochastic
    depth, dropout) start from the seed again, and the loops restart the epoch
    (``EpochBasedTrainLoop``) or re-load every consumed batch
    (``IterBasedTrainLoop``, which also draws augmentation randomness again).

    This hook:

    * captures the RNG states when a checkpoint is saved, and only then. With
      :class:`SafeCheckpointHook` (``configs/_base_/default_runtime.py``) every
      rank's states are gathered to rank 0 right before the save, on every rank
      (one ``all_gather_object`` per checkpoint, none on other iterations); with
      MMEngine's ``CheckpointHook`` only rank 0 takes part in a save, so a
      multi-process run stores rank 0's states only and a resume restores none
      (a warning says so);
    * writes them to ``checkpoint['exact_resume']`` with the number of batches
      per epoch, as plain tensors / ints / lists (``weights_only``-loadable);
    * keeps validation RNG-neutral (states saved before and restored after
      each validation), so training does not depend on when it validates;
    * on resume, keeps the loaded state for the train loop, which positions the
      data and restores the RNG states at the exact point the original run had
      reached (:class:`ResumableEpochBasedTrainLoop`,
      :class:`ResumableIterBasedTrainLoop`).

    List it in the config next to one of those loops::

        custom_hooks = [dict(type='ExactResumeHook')]

    The state is used only when the checkpoint is *resumed* (``resume=True``),
    never for ``load_from`` weight initialisation.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._prepared: Optional[List[Dict[str, Any]]] = None
        self._loaded: Optional[Dict[str, Any]] = None
        self._val_rng: Optional[Dict[str, Any]] = None
        self._warned_loop = False

    # ---------------------------------------------------------------- capture
    def _current(self) -> Dict[str, Any]:
        # During validation (a best checkpoint saved from after_val_epoch) the training
        # state is the one saved before validation; after_val restores exactly that one.
        return self._val_rng if self._val_rng is not None else capture_rng_state()

    def prepare_checkpoint(self, runner) -> None:
        """Gather every rank's RNG states for the checkpoint about to be saved.

        Called on every rank by :class:`SafeCheckpointHook` right before it saves
        (the only collective of this hook).
        """
        state = self._current()
        _, world_size = get_dist_info()
        self._prepared = all_gather_object(state) if world_size > 1 else [state]

    def before_train(self, runner) -> None:
        if not getattr(runner.train_loop, 'supports_exact_resume', False) and not self._warned_loop:
            self._warned_loop = True
            warnings.warn(
                f'ExactResumeHook: the train loop {type(runner.train_loop).__name__} cannot '
                'continue mid-epoch exactly; use train_cfg=dict(type='
                "'ResumableEpochBasedTrainLoop', ...) or dict(type='ResumableIterBasedTrainLoop'"
                ', ...) (see docs/reliability.md).')
        _, world_size = get_dist_info()
        from .safe_checkpoint_hook import SafeCheckpointHook
        if world_size > 1 and not any(isinstance(h, SafeCheckpointHook) for h in runner.hooks):
            warnings.warn(
                f'ExactResumeHook: with {world_size} processes the RNG states of every rank are '
                "gathered by SafeCheckpointHook; with this checkpoint hook only rank 0's are "
                'saved and a resume restores none. Use default_hooks=dict(checkpoint=dict('
                "type='SafeCheckpointHook', ...)).")

    # ------------------------------------------------------ validation is neutral
    def before_val(self, runner) -> None:
        self._val_rng = capture_rng_state()

    def after_val(self, runner) -> None:
        if self._val_rng is not None:
            restore_rng_state(self._val_rng)
            self._val_rng = None

    # -------------------------------------------------------------- checkpoint
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        rng, self._prepared = self._prepared, None
        if rng is None:  # a save SafeCheckpointHook did not announce: this rank's state only
            rng = [self._current()]
        loop = runner.train_loop
        checkpoint[CHECKPOINT_KEY] = dict(
            rng=rng,
            world_size=len(rng),
            batches_per_epoch=len(loop.dataloader) if loop is not None else 0,
        )

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is None:
            self._loaded = None
            return
        self._loaded = dict(state, iter=int(checkpoint.get('meta', {}).get('iter', 0)))

    def pop_resume_state(self, current_iter: int,
                         batches_per_epoch: int) -> Optional[Dict[str, Any]]:
        """The loaded state if training resumes from it now (called by the train loops).

        Args:
            current_iter (int): Iterations done, as the loop has it after resume.
            batches_per_epoch (int): ``len(train_dataloader)`` of this run.

        Returns:
            dict | None: ``rng`` (this rank's RNG states) and ``iter``; None when
            not resuming (fresh start, ``load_from``) or when the checkpoint
            cannot be continued exactly (a warning says why).
        """
        state, self._loaded = self._loaded, None
        if state is None or current_iter == 0 or state['iter'] != current_iter:
            return None
        if state['batches_per_epoch'] != batches_per_epoch:
            warnings.warn(
                f'ExactResumeHook: the checkpoint was written with '
                f'{state["batches_per_epoch"]} batches per epoch, this run has '
                f'{batches_per_epoch} (batch size, dataset or number of processes changed); '
                'resuming without the saved data position and RNG states.')
            return None
        rank, world_size = get_dist_info()
        if state['world_size'] != world_size:
            warnings.warn(f'ExactResumeHook: the checkpoint holds RNG states of '
                          f'{state["world_size"]} process(es), this run has {world_size}; '
                          'RNG states are not restored.')
            return dict(iter=state['iter'], rng=None)
        return dict(iter=state['iter'], rng=state['rng'][rank])
