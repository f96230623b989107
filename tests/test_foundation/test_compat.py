"""The compat fixes: safe checkpoint loading (W2) and CPU distributed set-up (W3)."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.runner import CheckpointLoader

from mmscalekd.utils import (
    CorruptCheckpointError,
    UnsafeCheckpointError,
    adapt_cfg_to_device,
    safe_torch_load,
)


class _Payload:
    """Unpickling this runs ``os.system``-like code; a safe loader must refuse it."""

    def __reduce__(self):
        return (os.makedirs, (self.marker, ))


def _runner_like_checkpoint() -> dict:
    hub = MessageHub.get_instance('test_compat')
    hub.update_scalar('train/loss', 1.25)
    hub.update_scalar('train/lr', np.float64(0.1))
    return {
        'meta': {'epoch': 1, 'iter': 4, 'seed': np.int64(7)},
        'state_dict': {'w': torch.arange(4.0)},
        'message_hub': hub.state_dict(),
    }


def test_runner_state_loads_with_weights_only(tmp_path) -> None:
    path = tmp_path / 'iter_4.pth'
    torch.save(_runner_like_checkpoint(), path)
    # Through MMEngine's scheme registry, as Runner.resume and load_checkpoint do.
    ckpt = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    torch.testing.assert_close(ckpt['state_dict']['w'], torch.arange(4.0))
    assert ckpt['meta']['seed'] == 7
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() == 1.25


def test_malicious_pickle_is_refused_and_never_runs(tmp_path) -> None:
    marker = tmp_path / 'payload_ran'
    payload = _Payload()
    payload.marker = str(marker)
    path = tmp_path / 'teacher.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'evil': payload}, path)
    with pytest.raises(UnsafeCheckpointError, match='teacher.pth'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_getattr_guard_resolves_only_history_buffer_statistics(tmp_path) -> None:
    # A pickle that calls getattr(os, 'system') through the allowed getattr slot.
    data = (b'\x80\x02c__builtin__\ngetattr\ncos\nsystem\nX\x04\x00\x00\x00echo\x86R.')
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        zf.writestr('archive/data.pkl', data)
        zf.writestr('archive/version', '3\n')
    path = tmp_path / 'getattr.pth'
    path.write_bytes(buf.getvalue())
    with pytest.raises((UnsafeCheckpointError, CorruptCheckpointError)):
        safe_torch_load(path)


def test_truncated_checkpoint_is_reported_as_corrupt(tmp_path) -> None:
    path = tmp_path / 'latest.pth'
    torch.save(_runner_like_checkpoint(), path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CorruptCheckpointError, match='truncated'):
        safe_torch_load(path)


def test_missing_checkpoint_names_the_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nowhere.pth'))


def test_pickle_module_is_not_used_for_plain_state_dicts(tmp_path) -> None:
    path = tmp_path / 'sd.pth'
    torch.save({'a': torch.zeros(2, 2)}, path)
    assert safe_torch_load(path)['a'].shape == (2, 2)
    assert issubclass(UnsafeCheckpointError, pickle.UnpicklingError)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only adaptation')
def test_adapt_cfg_to_device_on_cpu() -> None:
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    adapt_cfg_to_device(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
    # A custom wrapper the user chose is kept.
    cfg = Config(dict(model_wrapper_cfg=dict(type='MMFullyShardedDataParallel')))
    adapt_cfg_to_device(cfg)
    assert 'device_ids' not in cfg.model_wrapper_cfg


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only adaptation')
def test_init_dist_pytorch_uses_gloo_without_cuda(monkeypatch) -> None:
    import torch.distributed as dist
    from mmengine.dist import utils as dist_utils
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(29400 + os.getpid() % 500))
    dist_utils._init_dist_pytorch(backend='nccl')
    try:
        assert dist.is_initialized()
        assert dist.get_backend() == 'gloo'
        t = torch.ones(3)
        dist.all_reduce(t)
        torch.testing.assert_close(t, torch.ones(3))
    finally:
        dist.destroy_process_group()


def test_guarded_getattr_direct() -> None:
    from mmengine.logging import HistoryBuffer

    from mmscalekd.utils.checkpoint import _guarded_getattr
    assert _guarded_getattr(HistoryBuffer, 'mean') == HistoryBuffer.mean
    with pytest.raises(UnsafeCheckpointError, match='system'):
        _guarded_getattr(os, 'system')
    with pytest.raises(UnsafeCheckpointError):
        _guarded_getattr(HistoryBuffer, '__init__')
