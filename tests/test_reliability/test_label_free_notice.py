"""label_free=True on a dataset whose samples carry labels: one warning line, no error (issue 8)."""
import logging
from typing import List

import pytest
from mmengine.logging import MMLogger

from mmscalekd.registry import MODELS
from tests import _builders as B

RESNET = dict(type='ResNet', depth=18, base_channels=8, stem_channels=8, out_indices=(3, ))


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def records():
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _distiller(label_free: bool):
    # logit-only distillation keeps the model tiny; the label logic is the same
    return MODELS.build(B.distiller(B.classifier(RESNET, 64), B.swin_teacher(), [],
                                    label_free=label_free))


def _notices(handler: _Records) -> List[str]:
    return [m for m in handler.messages if 'labels are ignored' in m]


def test_labels_present_with_label_free_are_reported_once(records) -> None:
    model = _distiller(label_free=True)
    for _ in range(3):
        losses = model.loss(*B.batch(64, labels=True))
    assert _notices(records) == [
        'ScaleKDDistiller: label_free=True, but every sample of the first batch carries a '
        'ground-truth label; the labels are ignored (no label term). Set label_free=False to '
        'train on them too.']
    assert not any(key.startswith('student.') for key in losses)  # still no label term


def test_no_notice_without_labels_or_without_label_free(records) -> None:
    _distiller(label_free=True).loss(*B.batch(64, labels=False))
    _distiller(label_free=False).loss(*B.batch(64, labels=True))
    assert _notices(records) == []


def test_notice_only_looks_at_the_first_step(records) -> None:
    model = _distiller(label_free=True)
    model.loss(*B.batch(64, labels=False))  # first step unlabeled: nothing to say
    model.loss(*B.batch(64, labels=True))
    assert _notices(records) == []
