"""Mixup / CutMix per sample, with a partner and parameters drawn from the sample's own seed.

mmpretrain's batch augments (``ClsDataPreprocessor(batch_augments=...)``, mmpretrain
``models/utils/batch_augments/``) mix each image with a partner picked by ``torch.randperm``
within the batch, with one ratio per batch. That partner depends on how the sampler grouped the
batch, so a cached teacher output could not be matched to it. Here the same augments (same config
schema: ``augments`` and ``probs`` as in ``RandomBatchAugment``, built from mmpretrain's
``Mixup`` / ``CutMix`` with their ``alpha``, ``cutmix_minmax`` and ``correct_lam``) are applied in
the dataset, per sample: which augment, the partner (any dataset index), the ratio ``lam`` and
the CutMix box are drawn from ``(seed, epoch, index)``, and the partner's view is its own view of
that epoch. This is how apple/ml-dr pairs images (``reinforce.py``: a recorded partner ``id2``
and its parameters), and what timm's ``Mixup(mode='elem')`` does for the ratio (one per sample).

Labels: the mixed sample's ``gt_score`` is ``lam * onehot(y) + (1 - lam) * onehot(y_partner)``
(its ``gt_label`` stays its own, as with mmpretrain's batch augments). When one of the two has no
label, the mixed sample has none either (``has_label`` False): a partly known mixture is not a
label.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np
import torch

from .seeding import STREAM_MIX, STREAM_MIX_BOX, seeded_global_rng, view_seed

_SUPPORTED = ('Mixup', 'CutMix')


@dataclass
class MixDraw:
    """What one sample's mixing does (drawn from its seed)."""

    augment: int  # position in SampleMix.augments
    kind: str  # 'Mixup' or 'CutMix'
    partner: int
    lam: float


class SampleMix:
    """Per-sample version of mmpretrain's ``RandomBatchAugment`` over Mixup / CutMix.

    Args:
        augments (dict | list[dict]): mmpretrain batch-augment configs, e.g.
            ``[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]``.
        probs (float | list[float], optional): Probability of each augment; the rest is "no
            mixing". None: choose evenly (always mix). Defaults to None.
        num_classes (int, optional): For the one-hot scores. Defaults to the dataset's number of
            classes (``metainfo['classes']``).
    """

    def __init__(self, augments: Union[dict, Sequence[dict]],
                 probs: Optional[Union[float, Sequence[float]]] = None,
                 num_classes: Optional[int] = None) -> None:
        from mmpretrain.models.utils.batch_augments import CutMix, Mixup

        from mmscalekd.registry import BATCH_AUGMENTS
        if isinstance(augments, dict):
            augments = [augments]
        if not isinstance(augments, (list, tuple)) or not augments:
            raise TypeError(f'mix.augments must be a batch-augment config or a non-empty list '
                            f'of them, e.g. [dict(type=\'Mixup\', alpha=0.8)], got {augments!r}')
        self.augments: List[Any] = []
        for cfg in augments:
            if not isinstance(cfg, dict) or cfg.get('type') not in _SUPPORTED:
                raise ValueError(f'mix.augments: each entry must be a dict of type '
                                 f'{" or ".join(_SUPPORTED)} (mmpretrain batch augments), got '
                                 f'{cfg!r}')
            alpha = cfg.get('alpha')
            if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
                raise ValueError(f'mix.augments: {cfg["type"]} alpha must be a positive number '
                                 f'(the Beta(alpha, alpha) of the ratio), got {alpha!r}')
            cfg = dict(cfg, alpha=float(alpha))
            aug = BATCH_AUGMENTS.build(cfg)
            if type(aug) not in (Mixup, CutMix):
                raise ValueError(f'mix.augments: {cfg["type"]} built {type(aug).__name__}; only '
                                 f'mmpretrain\'s {_SUPPORTED} are supported')
            self.augments.append(aug)
        n = len(self.augments)
        if probs is None:
            self.probs = [1.0 / n] * n
        else:
            if isinstance(probs, (int, float)) and not isinstance(probs, bool):
                probs = [float(probs)]
            if not isinstance(probs, (list, tuple)) or len(probs) != n or any(
                    isinstance(p, bool) or not isinstance(p, (int, float)) or p < 0
                    for p in probs) or sum(probs) > 1 + 1e-9:
                raise ValueError(f'mix.probs must be None or {n} non-negative number(s) summing '
                                 f'to at most 1 (one per augment; the rest is no mixing), got '
                                 f'{probs!r}')
            self.probs = [float(p) for p in probs]
        if num_classes is not None and (isinstance(num_classes, bool)
                                        or not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f'mix.num_classes must be a positive int, got {num_classes!r}')
        self.num_classes = num_classes

    def draw(self, seed: int, epoch: int, index: int, length: int) -> Optional[MixDraw]:
        """Which augment, partner and ratio a sample gets in an epoch (None: no mixing)."""
        rng = np.random.default_rng(view_seed(seed, epoch, index, STREAM_MIX))
        u = rng.random()
        edges = np.cumsum(self.probs)
        chosen = int(np.searchsorted(edges, u, side='right'))
        partner = int(rng.integers(length))
        if chosen >= len(self.augments):
            return None
        aug = self.augments[chosen]
        lam = float(rng.beta(aug.alpha, aug.alpha))
        return MixDraw(augment=chosen, kind=type(aug).__name__, partner=partner, lam=lam)

    def apply(self, data: dict, partner: dict, drawn: MixDraw, seed: int, epoch: int,
              index: int, num_classes: Callable[[], int]) -> dict:
        """Mix a packed sample with its partner (both ``PackInputs`` dicts); returns ``data``.

        Args:
            data (dict): ``inputs`` ``(C, H, W)`` and ``data_samples`` of the sample.
            partner (dict): The same of the partner (its view of this epoch).
            drawn (MixDraw): From :meth:`draw`.
            seed, epoch, index (int): The sample's key (for the CutMix box).
            num_classes (callable): Returns the classes of the one-hot scores (asked only when
                both samples are labeled).
        """
        x, xp = data['inputs'], partner['inputs']
        if x.shape != xp.shape:
            raise ValueError(
                f'mixing sample {index} with sample {drawn.partner} (epoch {epoch}): the views '
                f'have shapes {tuple(x.shape)} and {tuple(xp.shape)}; mixing needs views of one '
                'size (end the pipeline with a fixed-size crop or resize)')
        lam = drawn.lam
        if drawn.kind == 'Mixup':
            out = lam * x.float() + (1.0 - lam) * xp.float()
        else:
            with seeded_global_rng(view_seed(seed, epoch, index, STREAM_MIX_BOX)):
                box = self.augments[drawn.augment].cutmix_bbox_and_lam
                (y1, y2, x1, x2), lam = box(tuple(x.shape[-2:]), lam)
            out = x.float().clone()
            out[..., y1:y2, x1:x2] = xp.float()[..., y1:y2, x1:x2]
            lam = float(lam)
        data['inputs'] = out
        sample, other = data.get('data_samples'), partner.get('data_samples')
        if sample is None:
            return data
        if _labeled(sample) and other is not None and _labeled(other):
            k = num_classes()
            sample.set_gt_score(lam * _score(sample, k) + (1.0 - lam) * _score(other, k))
        else:
            for key in ('gt_label', 'gt_score'):
                if key in sample:
                    delattr(sample, key)
            sample.set_metainfo(dict(has_label=False))
        sample.set_metainfo(dict(mix=drawn.kind, mix_partner=drawn.partner, mix_lam=lam))
        return data

    @staticmethod
    def one_hot(sample: Any, num_classes: Callable[[], int]) -> None:
        """Give an unmixed labeled sample the ``gt_score`` a mixed one has (one-hot)."""
        if sample is not None and 'gt_label' in sample and 'gt_score' not in sample:
            sample.set_gt_score(_score(sample, num_classes()))


def _labeled(sample: Any) -> bool:
    return 'gt_label' in sample or 'gt_score' in sample


def _score(sample: Any, num_classes: int) -> torch.Tensor:
    if 'gt_score' in sample:
        return sample.gt_score.float()
    label = torch.as_tensor(sample.gt_label).long().view(-1)
    score = torch.zeros(num_classes, dtype=torch.float32)
    score[label] = 1.0 / max(len(label), 1)
    return score
