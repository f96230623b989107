"""Utilities: safe checkpoint loading, launch helpers, registry set-up, versions."""
from .checkpoint import (
                         CorruptCheckpointError,
                         UnsafeCheckpointError,
                         load_checkpoint_file,
                         register_safe_loaders,
                         safe_torch_load,
)
from .setup_env import adapt_cfg_to_device, register_all_modules

__all__ = [
    'CorruptCheckpointError', 'UnsafeCheckpointError', 'load_checkpoint_file',
    'register_safe_loaders', 'safe_torch_load', 'register_all_modules', 'adapt_cfg_to_device'
]
