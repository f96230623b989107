"""One ``data_root`` for every dataset of a config.

MMEngine configs copy values at parse time, so ``--cfg-options data_root=...`` changes only the
top-level key, not the datasets that were written with ``data_root=data_root``.
:func:`follow_data_root` passes the top-level ``data_root`` on to every dataset of the
dataloaders that takes one and does not set its own; ``DataRootRunner`` calls it when a config
is built, so ``tools/train.py CONFIG --cfg-options data_root=DIR`` moves all of them.
"""
from __future__ import annotations

import inspect
from typing import Any, List

from mmscalekd.registry import DATASETS

#: The dataloaders whose datasets follow the top-level ``data_root``.
DATALOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _takes_data_root(type_name: Any) -> bool:
    if not isinstance(type_name, str):
        cls = type_name
    else:
        cls = DATASETS.get(type_name)
        if cls is None:
            return False
    try:
        return 'data_root' in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def _fill(node: Any, data_root: str, path: str, changed: List[str]) -> None:
    if isinstance(node, dict):
        if 'type' in node and 'data_root' not in node and _takes_data_root(node['type']):
            node['data_root'] = data_root
            changed.append(path)
        for key, value in node.items():
            if key != 'pipeline':  # transforms are not datasets
                _fill(value, data_root, f'{path}.{key}', changed)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _fill(value, data_root, f'{path}.{i}', changed)


def follow_data_root(cfg: Any) -> List[str]:
    """Give every dataset of the dataloaders without a ``data_root`` the config's ``data_root``.

    Nested datasets (``dataset``, ``datasets``, ``labeled``, ``unlabeled``, ...) are included;
    datasets that set their own ``data_root`` keep it, and dataset types without a
    ``data_root`` argument (wrappers) are left alone. Nothing happens without a top-level
    ``data_root``.

    Args:
        cfg (Config | dict): A Runner config; changed in place.

    Returns:
        List[str]: The config paths that were filled, e.g.
        ``['train_dataloader.dataset.labeled', ...]``.
    """
    data_root = cfg.get('data_root')
    changed: List[str] = []
    if data_root is None:
        return changed
    if not isinstance(data_root, str) or not data_root:
        raise ValueError(f'data_root must be a non-empty folder path, got {data_root!r}')
    for key in DATALOADER_KEYS:
        loader = cfg.get(key)
        if isinstance(loader, dict) and loader.get('dataset') is not None:
            _fill(loader['dataset'], data_root, f'{key}.dataset', changed)
    return changed
