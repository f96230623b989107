"""Shared pytest set-up: one torch thread per xdist worker, registries (and the weights-only
checkpoint loaders, through register_all_modules), seeds."""
import logging
import os
import random
from typing import List

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

import mmscalekd  # noqa: F401
from mmscalekd.utils import register_all_modules

# Tests run in 2 xdist workers on 2 cores; more threads per worker only thrash.
torch.set_num_threads(int(os.environ.get('MMSCALEKD_TEST_THREADS', '1')))
register_all_modules(init_default_scope=True)

DEVICE = os.environ.get('TORCH_DEVICE', 'cpu')


def pytest_configure(config) -> None:
    # Tests build tiny teachers with random weights on purpose (allow_random_teacher=True).
    config.addinivalue_line(
        'filterwarnings', 'ignore::mmscalekd.models.teachers.RandomTeacherWarning')


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def device() -> torch.device:
    return torch.device(DEVICE)


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """Tests that build mmdet/mmseg models switch the default scope; switch it back."""
    yield
    from mmengine.registry import DefaultScope
    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name != 'mmscalekd':
        import uuid
        DefaultScope.get_instance(f'mmscalekd-test-{uuid.uuid4().hex}', scope_name='mmscalekd')


class _LogRecords(logging.Handler):
    """Keeps the messages of the current MMLogger (``messages``: list of str)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def records():
    """The messages the current MMLogger writes during the test."""
    logger = MMLogger.get_current_instance()
    handler = _LogRecords()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
