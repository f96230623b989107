"""Weights-only checkpoint loading through MMEngine's scheme registry (registered by
register_all_modules, version-gated, switchable) and CPU/gloo start-up by our launch helper."""
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.runner import CheckpointLoader
from mmengine.runner import checkpoint as mm_checkpoint

from mmscalekd.utils import (
    CorruptCheckpointError,
    UnsafeCheckpointError,
    adapt_cfg_to_device,
    register_safe_loaders,
    safe_torch_load,
    versions,
)
from mmscalekd.utils import checkpoint as our_checkpoint
from mmscalekd.utils.launch import init_cpu_distributed

# MMEngine's own loader for each prefix we register (module attributes, never replaced).
STOCK = {
    '': mm_checkpoint.load_from_local, 'http://': mm_checkpoint.load_from_http,
    'https://': mm_checkpoint.load_from_http, 'open-mmlab://': mm_checkpoint.load_from_openmmlab,
    'openmmlab://': mm_checkpoint.load_from_openmmlab,
    'torchvision://': mm_checkpoint.load_from_torchvision,
    'modelzoo://': mm_checkpoint.load_from_torchvision, 'mmcls://': mm_checkpoint.load_from_mmcls,
}


class _Payload:
    """Unpickling this runs ``os.system``-like code; a safe loader must refuse it."""

    def __reduce__(self):
        return (os.makedirs, (self.marker, ))


def _runner_like_checkpoint() -> dict:
    hub = MessageHub.get_instance('test_checkpoint_loading')
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


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only start-up')
def test_launch_helper_starts_gloo_for_torchrun_without_cuda() -> None:
    import torch.distributed as dist
    env = dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(29400 + os.getpid() % 500))
    assert init_cpu_distributed('none', env=dict(env)) is False
    assert init_cpu_distributed('pytorch', backend='nccl', env=env, timeout=60) is True
    try:
        assert dist.is_initialized()
        assert dist.get_backend() == 'gloo'  # nccl needs CUDA: replaced
        t = torch.ones(3)
        dist.all_reduce(t)
        torch.testing.assert_close(t, torch.ones(3))
        assert init_cpu_distributed('pytorch', env=env) is False  # a group exists already
    finally:
        dist.destroy_process_group()


# ------------------------------------------------------------ registration of the loaders
@pytest.fixture
def stock_schemes():
    """MMEngine's own loaders in place for the test; the registry is restored afterwards."""
    saved = OrderedDict(CheckpointLoader._schemes)
    CheckpointLoader._schemes = OrderedDict(saved, **STOCK)
    yield
    CheckpointLoader._schemes = saved


def test_register_all_modules_registers_the_weights_only_schemes(stock_schemes) -> None:
    from mmscalekd.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    for prefix, stock in STOCK.items():
        loader = CheckpointLoader._schemes[prefix]
        assert loader is not stock and loader.__module__ == 'mmscalekd.utils.checkpoint', prefix
    # MMEngine logs "Loads checkpoint by <name[10:]> backend".
    assert CheckpointLoader._schemes[''].__name__[10:] == 'local_weights_only'
    # Schemes we do not handle keep MMEngine's loaders.
    assert CheckpointLoader._schemes['pavi://'] is mm_checkpoint.load_from_pavi


@pytest.mark.parametrize('value', ['0', 'false', 'OFF'])
def test_environment_variable_turns_the_loaders_off(stock_schemes, monkeypatch, value) -> None:
    monkeypatch.setenv(our_checkpoint.SAFE_LOADING_ENV, value)
    assert register_safe_loaders() is False
    assert all(CheckpointLoader._schemes[p] is f for p, f in STOCK.items())
    monkeypatch.setenv(our_checkpoint.SAFE_LOADING_ENV, '1')
    assert register_safe_loaders() is True


def test_outside_the_tested_mmengine_range_warns_and_keeps_the_stock_loaders(
        stock_schemes, monkeypatch) -> None:
    real = versions.installed_version
    monkeypatch.setattr(versions, 'installed_version',
                        lambda name: '0.11.2' if name == 'mmengine' else real(name))
    monkeypatch.setattr(our_checkpoint, '_gate_warned', False)
    with pytest.warns(UserWarning, match=r'mmengine 0\.11\.2 is outside the tested range'):
        assert register_safe_loaders() is False
    assert all(CheckpointLoader._schemes[p] is f for p, f in STOCK.items())


def test_named_schemes_resolve_through_mmengine_lists_and_load_safely(monkeypatch) -> None:
    seen = []

    def fake_url_loader(url, map_location=None, model_dir=None):
        seen.append(url)
        return {'state_dict': {'backbone.conv.weight': torch.ones(1),
                               'head.fc.bias': torch.ones(1)}}

    monkeypatch.setattr(our_checkpoint, 'load_url_checkpoint', fake_url_loader)
    CheckpointLoader.load_checkpoint('torchvision://resnet18')
    assert seen[-1] == mm_checkpoint.get_torchvision_models()['resnet18']
    name = next(n for n, u in mm_checkpoint.get_external_models().items()
                if u.startswith('https://'))
    CheckpointLoader.load_checkpoint(f'open-mmlab://{name}')
    assert seen[-1] == mm_checkpoint.get_external_models()[name]
    name = next(iter(mm_checkpoint.get_mmcls_models()))
    out = CheckpointLoader.load_checkpoint(f'mmcls://{name}')
    assert list(out['state_dict']) == ['conv.weight']  # mmcls: backbone only, prefix stripped
    with pytest.raises(KeyError, match='no model'):
        CheckpointLoader.load_checkpoint('torchvision://not_a_model')


def test_guarded_getattr_direct() -> None:
    from mmengine.logging import HistoryBuffer

    from mmscalekd.utils.checkpoint import _guarded_getattr
    assert _guarded_getattr(HistoryBuffer, 'mean') == HistoryBuffer.mean
    with pytest.raises(UnsafeCheckpointError, match='system'):
        _guarded_getattr(os, 'system')
    with pytest.raises(UnsafeCheckpointError):
        _guarded_getattr(HistoryBuffer, '__init__')
