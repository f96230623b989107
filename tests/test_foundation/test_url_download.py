"""``load_url_checkpoint``: one download per node, announced in the log, then read from the cache.

``torch.hub.download_url_to_file`` is replaced by a fake that writes a real checkpoint, so no
network is used.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List

import pytest
import torch

from mmscalekd.utils import checkpoint as our_checkpoint

URL = 'https://download.example.org/teachers/swin-tiny_1k-0123abcd.pth?raw=1'


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Record downloads and log lines; the fake download saves a small state dict."""
    seen: dict = dict(downloads=[], logs=[])

    def download(url: str, dst: str, progress: bool = True, **kwargs: Any) -> None:
        seen['downloads'].append((url, dst, progress))
        torch.save({'state_dict': {'w': torch.arange(3.)}}, dst)

    def print_log(msg: Any, logger: Any = None, level: int = 20) -> None:
        seen['logs'].append(str(msg))

    monkeypatch.setattr('torch.hub.download_url_to_file', download)
    monkeypatch.setattr('mmengine.logging.print_log', print_log)
    return seen


def _fake_dist(monkeypatch: pytest.MonkeyPatch, local_rank: int, barriers: List[int],
               node: int = 1) -> None:
    """8 processes on 2 nodes of 4; this one is ``local_rank`` on ``node``."""
    monkeypatch.setattr('mmengine.dist.get_dist_info', lambda: (node * 4 + local_rank, 8))
    monkeypatch.setattr('mmengine.dist.get_local_rank', lambda: local_rank)
    monkeypatch.setattr(torch.distributed, 'barrier', lambda *a, **k: barriers.append(1))


def test_downloads_once_logs_url_and_target_then_uses_the_cache(fake_hub: dict,
                                                                 tmp_path: Path) -> None:
    ckpt = our_checkpoint.load_url_checkpoint(URL, model_dir=str(tmp_path))
    target = tmp_path / 'swin-tiny_1k-0123abcd.pth'
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(3.))
    assert len(fake_hub['downloads']) == 1
    url, dst, progress = fake_hub['downloads'][0]
    assert url == URL and dst == str(target) and progress is False  # stderr is no terminal
    assert len(fake_hub['logs']) == 1
    assert URL in fake_hub['logs'][0] and str(target) in fake_hub['logs'][0]
    # a second load reads the cache: no download, no log line
    again = our_checkpoint.load_url_checkpoint(URL, model_dir=str(tmp_path))
    assert torch.equal(again['state_dict']['w'], torch.arange(3.))
    assert len(fake_hub['downloads']) == 1 and len(fake_hub['logs']) == 1


def test_local_rank_zero_of_each_node_downloads(fake_hub: dict, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    barriers: List[int] = []
    _fake_dist(monkeypatch, 0, barriers)  # global rank 4: node 1's local rank 0
    our_checkpoint.load_url_checkpoint(URL, model_dir=str(tmp_path))
    assert len(fake_hub['downloads']) == 1 and barriers == [1]


def test_other_local_ranks_wait_and_read_the_cache(fake_hub: dict, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    barriers: List[int] = []
    _fake_dist(monkeypatch, 3, barriers)
    with pytest.raises(FileNotFoundError, match=r"not in the download cache .*local rank 0"):
        our_checkpoint.load_url_checkpoint(URL, model_dir=str(tmp_path))
    assert fake_hub['downloads'] == [] and barriers == [1]
    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'swin-tiny_1k-0123abcd.pth')
    ckpt = our_checkpoint.load_url_checkpoint(URL, model_dir=str(tmp_path))
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    assert fake_hub['downloads'] == [] and fake_hub['logs'] == [] and barriers == [1, 1]


def test_failed_download_reaches_the_barrier_then_raises(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    barriers: List[int] = []
    _fake_dist(monkeypatch, 0, barriers, node=0)

    def broken(url: str, dst: str, progress: bool = True) -> None:
        raise ConnectionError('no route to host')

    monkeypatch.setattr('torch.hub.download_url_to_file', broken)
    with pytest.raises(ConnectionError, match='no route'):
        our_checkpoint.load_url_checkpoint(URL, model_dir=str(tmp_path))
    assert barriers == [1]
