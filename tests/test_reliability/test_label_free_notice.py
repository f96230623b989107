"""label_free=True on a dataset whose samples carry labels: one warning line, no error."""
from typing import List

from mmscalekd.registry import MODELS
from tests import _builders as B

RESNET = dict(type='ResNet', depth=18, base_channels=8, stem_channels=8, out_indices=(3, ))


def _distiller(label_free: bool):
    # logit-only distillation keeps the model tiny; the label logic is the same
    return MODELS.build(B.distiller(B.classifier(RESNET, 64), B.swin_teacher(), [],
                                    label_free=label_free))


def _notices(handler) -> List[str]:
    return [m for m in handler.messages if 'labels are ignored' in m]


def test_labels_present_with_label_free_are_reported_once(records) -> None:
    model = _distiller(label_free=True)
    for _ in range(3):
        losses = model.loss(*B.batch(64, labels=True))
    assert _notices(records) == [
        'ScaleKDDistiller: label_free=True, but 2 of 2 samples of a batch carry a ground-truth '
        'label; the labels are ignored (no label term, label_loss_weight unused). Set '
        'label_free=False to train on them (with partial_labels=True when batches mix labeled '
        'and unlabeled samples). Reported once.']
    assert not any(key.startswith('student.') for key in losses)  # still no label term


def test_no_notice_without_labels_or_without_label_free(records) -> None:
    _distiller(label_free=True).loss(*B.batch(64, labels=False))
    _distiller(label_free=False).loss(*B.batch(64, labels=True))
    assert _notices(records) == []


def test_notice_on_a_later_half_labeled_batch(records) -> None:
    model = _distiller(label_free=True)
    model.loss(*B.batch(64, labels=False))  # unlabeled: nothing to say
    assert _notices(records) == []
    x, samples = B.batch(64, b=4)
    for i in (0, 2, 3):
        del samples[i].gt_label
    losses = model.loss(x, samples)  # one labeled sample among four
    model.loss(*B.batch(64, labels=True))  # said once only
    notices = _notices(records)
    assert len(notices) == 1 and '1 of 4 samples of a batch carry' in notices[0]
    assert not any(key.startswith('student.') for key in losses)
