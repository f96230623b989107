"""The distiller's side of a teacher cache: checks at build, cached logits per batch, check mode."""
from __future__ import annotations

import copy
import logging
from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub, print_log
from torch import Tensor

from .hashing import state_dict_sha256
from .manifest import (
    CHECKED_KEY,
    CacheManifest,
    TeacherCacheError,
    load_manifest,
    preprocessor_identity,
    teacher_identity,
)

_KEYS = ('cache_dir', 'check_interval', 'check_tolerance')


class CachedTeacherTargets:
    """Replays a teacher cache for a logit-only distiller (``distill_stages=[]``).

    Built from the distiller's ``teacher_cache`` dict, before (and usually instead of) the
    teacher. It checks, at build time, that the run can be served by the cache: the teacher
    config and checkpoint (SHA-256), the data preprocessor (the teacher's input normalisation)
    and the student's class count must be the cached ones, and the distiller must be logit-only
    with a deterministic teacher. The views and dataset length are checked by
    :class:`TeacherCacheDataset`, the epochs by :class:`TeacherCacheHook`.

    Args:
        cfg (dict): ``dict(cache_dir=..., check_interval=0, check_tolerance=None)``:
            ``check_interval`` N > 0 builds the teacher as well and re-runs it on every N-th
            training batch (a fraction 1/N), logging the deviation of the cached distribution
            from the live one (``cache.check_max_abs_dp``, ``cache.check_kl``,
            ``cache.check_top1_agree``); ``check_tolerance`` makes a larger max |dp| an error.
        teacher (dict): The distiller's teacher config.
        data_preprocessor (dict): The distiller's data preprocessor config.
        num_classes (int, optional): Classes of the student head (checked when known).
        distill_stages (Sequence): The distiller's stages (must be empty).
        has_logit_loss (bool): Whether the distiller has a logit loss (must be True).
        teacher_train_mode (bool): Must be False (a stochastic teacher cannot be cached).
    """

    def __init__(self, cfg: dict, teacher: Any, data_preprocessor: Any,
                 num_classes: Optional[int] = None, distill_stages: Sequence = (),
                 has_logit_loss: bool = True, teacher_train_mode: bool = False) -> None:
        if not isinstance(cfg, dict):
            raise TypeError(f"teacher_cache must be None or dict(cache_dir='...', "
                            f'check_interval=0, check_tolerance=None), got {cfg!r}')
        unknown = set(cfg) - set(_KEYS)
        if unknown or 'cache_dir' not in cfg:
            raise ValueError(f'teacher_cache takes {list(_KEYS)} (cache_dir required), got '
                             f'keys {sorted(cfg)}')
        interval = cfg.get('check_interval', 0)
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 0:
            raise ValueError(f'teacher_cache.check_interval must be an int >= 0 (0: never '
                             f're-run the teacher; N: every N-th batch), got {interval!r}')
        tolerance = cfg.get('check_tolerance')
        if tolerance is not None and (isinstance(tolerance, bool)
                                      or not isinstance(tolerance, (int, float))
                                      or not 0 < tolerance <= 1):
            raise ValueError(f'teacher_cache.check_tolerance must be None or a probability '
                             f'difference in (0, 1], got {tolerance!r}')
        if tolerance is not None and interval == 0:
            raise ValueError('teacher_cache.check_tolerance needs check_interval > 0 (the '
                             'tolerance applies to the checks)')
        if distill_stages:
            raise ValueError(
                'teacher_cache holds logits only; feature stages (distill_stages) need the live '
                'teacher (their targets are ~450 KB per image, and TPP runs the teacher on '
                'student features). Use distill_stages=[] with a teacher cache, or drop '
                'teacher_cache.')
        if not has_logit_loss:
            raise ValueError('teacher_cache without a logit_loss: nothing would read the cache')
        if teacher_train_mode:
            raise ValueError('teacher_cache with teacher_train_mode=True: a teacher in train '
                             'mode (drop path, dropout) is stochastic, its outputs cannot be '
                             'cached')
        if not isinstance(data_preprocessor, dict):
            raise TypeError(f'teacher_cache needs the data preprocessor as a config dict (the '
                            f'teacher sees what it normalises, and the cache records it), got '
                            f'{type(data_preprocessor).__name__}')
        if data_preprocessor.get('batch_augments'):
            raise ValueError(
                'teacher_cache with batch_augments in the data preprocessor: their partners '
                'depend on the batch, so the cached outputs would belong to other images. Move '
                "them to the dataset: TeacherCacheDataset(..., mix=dict(augments=[...], "
                'probs=...)) (the same schema), and drop batch_augments.')
        self.cache_dir = cfg['cache_dir']
        self.check_interval = interval
        self.check_tolerance = tolerance
        self.manifest: CacheManifest = load_manifest(self.cache_dir)
        self.manifest.check_teacher(teacher_identity(teacher))
        self.manifest.check_preprocessor(preprocessor_identity(copy.deepcopy(data_preprocessor)))
        if num_classes is not None:
            self.manifest.check_num_classes(num_classes)
        self._calls = 0
        self._runner_checked = False

    @property
    def builds_teacher(self) -> bool:
        """Whether the distiller needs the teacher (check mode)."""
        return self.check_interval > 0

    def check_teacher_weights(self, teacher: torch.nn.Module) -> None:
        """In check mode: the built teacher must hold the weights the cache was written with."""
        cached = self.manifest.teacher.get('weights_sha256')
        current = state_dict_sha256(teacher)
        if cached and cached != current:
            raise TeacherCacheError(
                f'teacher cache {self.cache_dir}: the teacher built for the check has weights '
                f'of SHA-256 {current}, the cache was written with {cached}; the checks would '
                'compare two different teachers.')

    def _check_runner(self) -> None:
        hub = MessageHub.get_current_instance()
        if hub.get_info('max_iters') is not None and \
                hub.get_info(CHECKED_KEY) != self.manifest.config_sha256:
            raise TeacherCacheError(
                "a distiller with teacher_cache trains in a Runner without TeacherCacheHook, "
                "which checks before the first step that the cache holds every epoch of the run; "
                "add custom_hooks = [dict(type='TeacherCacheHook')] to the config.")
        self._runner_checked = True

    def logits(self, data_samples: Optional[list], device: torch.device) -> Tensor:
        """The cached teacher logits ``(B, K)`` of a batch (``teacher_logits`` fields).

        Args:
            data_samples (list[DataSample]): From :class:`TeacherCacheDataset`.
            device (torch.device): Where the logits go.
        """
        if not self._runner_checked:
            self._check_runner()
        if not data_samples or any('teacher_logits' not in ds for ds in data_samples):
            raise TeacherCacheError(
                'the batch carries no cached teacher outputs (data samples without '
                "teacher_logits): with teacher_cache the train dataset must be "
                "dict(type='TeacherCacheDataset', dataset=..., cache_dir=...).")
        self._calls += 1
        return torch.stack([ds.teacher_logits for ds in data_samples]).to(device).float()

    def check_due(self) -> bool:
        """Whether the current batch (the last one :meth:`logits` served) is checked."""
        return self.check_interval > 0 and (self._calls - 1) % self.check_interval == 0

    def deviation(self, cached: Tensor, live: Tensor) -> Dict[str, Tensor]:
        """How far the cached distribution is from the live teacher's, on one batch.

        Args:
            cached (Tensor): ``(B, K)`` cached logits.
            live (Tensor): ``(B, K)`` logits of the live teacher on the same inputs.

        Returns:
            dict: ``cache.check_max_abs_dp`` (max over the batch and classes of
            ``|p_cache - p_teacher|``), ``cache.check_kl`` (batch mean of
            ``KL(p_teacher || p_cache)``) and ``cache.check_top1_agree`` (share of samples with
            the same top-1 class). Logged, never summed into the loss.
        """
        log_c = F.log_softmax(cached.detach().float(), dim=1)
        log_t = F.log_softmax(live.detach().float(), dim=1)
        max_dp = (log_c.exp() - log_t.exp()).abs().max()
        kl = (log_t.exp() * (log_t - log_c)).sum(dim=1).mean()
        agree = (cached.argmax(dim=1) == live.argmax(dim=1)).float().mean()
        out = {'cache.check_max_abs_dp': max_dp, 'cache.check_kl': kl,
               'cache.check_top1_agree': agree}
        print_log(f'teacher cache check (batch {self._calls}): max |p_cache - p_teacher| = '
                  f'{float(max_dp):.3e}, KL(teacher || cache) = {float(kl):.3e}, top-1 agreement '
                  f'{float(agree):.3f}', logger='current', level=logging.INFO)
        if self.check_tolerance is not None and float(max_dp) > self.check_tolerance:
            raise TeacherCacheError(
                f'teacher cache {self.cache_dir}: on batch {self._calls} the cached '
                f'probabilities differ from the live teacher\'s by up to {float(max_dp):.3e} '
                f'(> check_tolerance {self.check_tolerance}); the teacher, the data or the '
                'views are not the ones the cache was written with.')
        return out
