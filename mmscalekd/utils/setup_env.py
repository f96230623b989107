"""Registry set-up and device adaptation shared by our tools and tests."""
from __future__ import annotations

import datetime
import warnings

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register every mmscalekd and mmpretrain module, and the weights-only loaders.

    Besides the registries, this registers our checkpoint loader schemes with
    MMEngine (:func:`mmscalekd.utils.register_safe_loaders`; version-gated,
    ``MMSCALEKD_SAFE_LOADING=0`` turns it off). Importing mmscalekd alone does
    neither.

    Args:
        init_default_scope (bool): Whether to make ``mmscalekd`` the default
            scope, so that bare type names resolve through our registries (and,
            through their parents, mmpretrain's). Defaults to True.
    """
    from mmpretrain.utils import register_all_modules as register_mmpretrain
    register_mmpretrain(init_default_scope=False)

    import mmscalekd.datasets  # noqa: F401
    import mmscalekd.engine  # noqa: F401
    import mmscalekd.models  # noqa: F401

    from .checkpoint import register_safe_loaders
    register_safe_loaders()

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('mmscalekd', scope_name='mmscalekd')
    elif current.scope_name != 'mmscalekd':
        warnings.warn(f'The current default scope "{current.scope_name}" is not '
                      '"mmscalekd"; register_all_modules switches it to "mmscalekd".')
        DefaultScope.get_instance(f'mmscalekd-{datetime.datetime.now()}',
                                  scope_name='mmscalekd')


def adapt_cfg_to_device(cfg: Config) -> Config:
    """Make a GPU-oriented config runnable on a machine without CUDA.

    Without CUDA the process group uses gloo (nccl needs CUDA) and DDP wraps CPU
    modules, for which ``device_ids`` must be None (the Runner's default wrapper
    passes ``[local_rank]``). Configs that already set these are left alone
    where the values work on CPU.

    Args:
        cfg (Config): A Runner config; modified in place and returned.
    """
    if torch.cuda.is_available():
        return cfg
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    if wrapper.get('type', 'MMDistributedDataParallel') in (
            'MMDistributedDataParallel', 'mmengine.MMDistributedDataParallel'):
        wrapper['device_ids'] = None
        wrapper.setdefault('broadcast_buffers', False)
    cfg.model_wrapper_cfg = wrapper
    return cfg
