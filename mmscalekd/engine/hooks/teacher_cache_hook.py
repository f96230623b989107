"""Checks, before the first step, that a run can replay its teacher cache to the end."""
from __future__ import annotations

import math

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from mmscalekd.registry import HOOKS
from mmscalekd.teacher_cache.manifest import CHECKED_KEY, TeacherCacheError


def _unwrap(model):
    return getattr(model, 'module', model)


@HOOKS.register_module()
class TeacherCacheHook(Hook):
    """Start-up checks of a training run that replays a teacher cache.

    In ``before_train`` (after a resume is loaded, before any batch), it checks that

    * the train dataset is a :class:`TeacherCacheDataset` (not wrapped further) and the sampler an
      :class:`EpochTaggedSampler` (each key carries its epoch);
    * the model is a distiller with ``teacher_cache`` pointing to the same cache (same
      ``config_sha256``) as the dataset;
    * the cache holds every data epoch the run will reach: ``max_epochs`` for epoch-based loops,
      ``ceil(max_iters / len(train_dataloader))`` for iteration-based ones (unless the dataset
      ``cycle``\\ s).

    Any failure raises :class:`~mmscalekd.teacher_cache.TeacherCacheError` naming what differs.
    A distiller with ``teacher_cache`` refuses to train in a Runner where this hook did not run.
    Add it with ``custom_hooks = [dict(type='TeacherCacheHook')]``.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        from mmscalekd.datasets import EpochTaggedSampler, TeacherCacheDataset
        loader = runner.train_dataloader
        dataset = loader.dataset
        if not isinstance(dataset, TeacherCacheDataset):
            raise TeacherCacheError(
                f'TeacherCacheHook: the train dataset is a {type(dataset).__name__}, not a '
                "TeacherCacheDataset; set train_dataloader.dataset=dict(type='TeacherCacheDataset'"
                ", dataset=<your dataset>, cache_dir=...) or drop the hook and teacher_cache.")
        sampler = getattr(loader, 'sampler', None)
        batch_sampler = getattr(loader, 'batch_sampler', None)
        sampler = getattr(batch_sampler, 'sampler', sampler)
        if not isinstance(sampler, EpochTaggedSampler):
            raise TeacherCacheError(
                f'TeacherCacheHook: the train sampler is a {type(sampler).__name__}; the cache '
                "needs sampler=dict(type='EpochTaggedSampler', shuffle=True) (its keys carry "
                'the epoch, so every epoch replays its own views and targets).')
        model = _unwrap(runner.model)
        cache = getattr(getattr(model, 'teacher_cache', None), 'manifest', None)
        if cache is None:
            raise TeacherCacheError(
                f'TeacherCacheHook: the model {type(model).__name__} has no teacher_cache; set '
                f"model.teacher_cache=dict(cache_dir={dataset.cache_dir!r}).")
        if cache.config_sha256 != dataset.manifest.config_sha256:
            raise TeacherCacheError(
                f'TeacherCacheHook: the model reads the cache in {cache.root} '
                f'({cache.config_sha256[:12]}), the dataset the one in {dataset.cache_dir} '
                f'({dataset.manifest.config_sha256[:12]}); point both to the same cache.')
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):  # (it reports max_epochs=1)
            per_epoch = len(loader)
            needed = max(1, math.ceil(int(loop.max_iters) / per_epoch))
            how = f'max_iters={loop.max_iters} at {per_epoch} batches per epoch'
        else:
            needed = int(loop.max_epochs)
            how = f'max_epochs={needed}'
        try:
            dataset.manifest.check_epochs(needed, cycle=dataset.cycle)
        except TeacherCacheError as err:
            raise TeacherCacheError(f'{err} (this run: {how})') from None
        runner.message_hub.update_info(CHECKED_KEY, dataset.manifest.config_sha256)
        m = dataset.manifest
        print_log(f'TeacherCacheHook: replaying {m.root}: {m.epochs} epoch(s) x '
                  f'{m.dataset_length} samples, top-{m.topk} of {m.num_classes} classes '
                  f'({m.dtype}); this run needs {needed} epoch(s) ({how})'
                  f'{", cycling" if dataset.cycle else ""}.', logger='current')
