"""Fixtures of the SSLD tests: a small image folder."""
from __future__ import annotations

import pytest

from tests.test_ssld._helpers import solid


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / 'pool'
    solid(str(root / 'a.png'), (255, 0, 0))
    solid(str(root / 'sub' / 'b.JPG'), (0, 255, 0), fmt='JPEG')
    solid(str(root / 'sub' / 'deeper' / 'c.jpeg'), (0, 0, 255), fmt='JPEG')
    (root / 'notes.txt').write_text('not an image')
    (root / 'sub' / 'labels.csv').write_text('x,y')
    return root
