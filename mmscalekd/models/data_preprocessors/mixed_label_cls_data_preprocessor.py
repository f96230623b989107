"""A classification data preprocessor for batches where only some samples have labels."""
from __future__ import annotations

from typing import Any, Dict

from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.structures import DataSample
from mmpretrain.structures.utils import batch_label_to_onehot, cat_batch_labels

from mmscalekd.registry import MODELS


def _labeled(sample: DataSample) -> bool:
    return 'gt_label' in sample or 'gt_score' in sample


@MODELS.register_module()
class MixedLabelClsDataPreprocessor(ClsDataPreprocessor):
    """``ClsDataPreprocessor`` that accepts batches mixing labeled and unlabeled samples.

    mmpretrain's preprocessor decides from the *first* sample whether a batch
    has labels; a batch mixing samples with and without ``gt_label`` (e.g.
    from ``LabeledUnlabeledDataset``) then fails. This subclass behaves exactly
    like the parent for homogeneous batches. For a mixed batch it normalises
    the images as usual, moves the labeled samples' labels to the device and
    (with ``to_onehot``) gives them a one-hot ``gt_score``; unlabeled samples
    are left without labels. Batch augments (Mixup/CutMix) need a score for
    every sample, so a mixed *training* batch with ``batch_augments`` raises a
    ``ValueError``.

    Args:
        **kwargs: Arguments of :class:`mmpretrain.models.ClsDataPreprocessor`.

    Shapes:
        inputs: a list of ``(3, H, W)`` uint8 tensors or a ``(B, 3, H, W)``
        tensor; output ``inputs``: ``(B, 3, H, W)`` float.
    """

    def forward(self, data: Dict[str, Any], training: bool = False) -> Dict[str, Any]:
        samples = data.get('data_samples', None)
        if not samples or not isinstance(samples[0], DataSample):
            return super().forward(data, training)
        flags = [_labeled(s) for s in samples]
        if all(flags) or not any(flags):
            return super().forward(data, training)
        if training and self.batch_augments is not None:
            raise ValueError(
                'MixedLabelClsDataPreprocessor: batch_augments (Mixup/CutMix) need a label on '
                f'every sample, but {flags.count(False)} of {len(flags)} samples have none. '
                'Drop the batch augments or the labels '
                '(LabeledUnlabeledDataset(keep_labels=False)).')
        out = super().forward(dict(inputs=data['inputs'], data_samples=None), training)
        labeled = [s for s, f in zip(samples, flags) if f]
        with_label = [s for s in labeled if 'gt_label' in s]
        if len(with_label) == len(labeled):
            batch_label, split = cat_batch_labels([s.gt_label for s in labeled])
            batch_label = batch_label.to(self.device)
            starts = [0] + list(split)
            ends = list(split) + [batch_label.numel()]
            for s, a, b in zip(labeled, starts, ends):
                s.set_gt_label(batch_label[a:b])
            if self.to_onehot and not any('gt_score' in s for s in labeled):
                num_classes = self.num_classes or labeled[0].get('num_classes')
                if num_classes is None:
                    raise ValueError('Cannot make one-hot labels: set `num_classes` in '
                                     'the data preprocessor.')
                scores = batch_label_to_onehot(batch_label, split, num_classes)
                for s, score in zip(labeled, scores):
                    s.set_gt_score(score)
        for s in labeled:
            if 'gt_score' in s:
                s.set_gt_score(s.gt_score.to(self.device))
        out['data_samples'] = samples
        return out
