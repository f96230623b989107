"""Stable hashes of configs, files and weights, and readable differences between configs."""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Dict, List, Mapping, Union

import numpy as np
import torch


def canonical(obj: Any) -> Any:
    """A JSON-compatible copy of a config value with a stable form.

    Dicts (``ConfigDict`` included) become plain dicts (keys as strings), tuples become lists,
    numpy scalars Python numbers; classes and functions (``type=SomeClass`` configs) their
    ``module.qualname``. Anything else falls back to ``repr``.

    Args:
        obj: A config value.

    Returns:
        A structure of dicts, lists, str, int, float, bool and None.
    """
    if isinstance(obj, Mapping):
        return {str(k): canonical(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, (bool, str)) or obj is None:
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else repr(value)
    if isinstance(obj, type) or callable(obj):
        return f'{getattr(obj, "__module__", "?")}.{getattr(obj, "__qualname__", repr(obj))}'
    return repr(obj)


def canonical_json(obj: Any) -> str:
    """``canonical(obj)`` as compact JSON with sorted keys."""
    return json.dumps(canonical(obj), sort_keys=True, separators=(',', ':'))


def config_sha256(obj: Any) -> str:
    """SHA-256 (hex) of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode('utf-8')).hexdigest()


def config_diff(cached: Any, current: Any, limit: int = 5, _path: str = '') -> List[str]:
    """Where two config values differ, as ``'path: cached vs current'`` lines.

    Args:
        cached: The value recorded in a cache manifest (canonical form).
        current: The value of this run.
        limit (int): At most this many lines. Defaults to 5.

    Returns:
        list[str]: Empty when both are equal.
    """
    cached, current = canonical(cached), canonical(current)
    out: List[str] = []
    if isinstance(cached, dict) and isinstance(current, dict):
        for key in sorted(set(cached) | set(current)):
            path = f'{_path}.{key}' if _path else key
            if key not in cached:
                out.append(f'{path}: absent vs {current[key]!r}')
            elif key not in current:
                out.append(f'{path}: {cached[key]!r} vs absent')
            else:
                out.extend(config_diff(cached[key], current[key], limit, path))
            if len(out) >= limit:
                break
    elif isinstance(cached, list) and isinstance(current, list) and len(cached) == len(current):
        for i, (a, b) in enumerate(zip(cached, current)):
            out.extend(config_diff(a, b, limit, f'{_path}[{i}]'))
            if len(out) >= limit:
                break
    elif cached != current:
        out.append(f'{_path or "<value>"}: {cached!r} vs {current!r}')
    return out[:limit]


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
    """SHA-256 (hex) of a file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def state_dict_sha256(state: Union[torch.nn.Module, Dict[str, torch.Tensor]]) -> str:
    """SHA-256 (hex) over a state dict: every tensor's name, dtype, shape and bytes, by name.

    Identifies the weights a teacher actually ran with, wherever they came from (a local
    checkpoint, a URL, timm's ``pretrained=True``).

    Args:
        state (nn.Module | dict): A module (its ``state_dict()``) or a state dict.
    """
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    digest = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        if not isinstance(value, torch.Tensor):
            continue
        t = value.detach().cpu().contiguous()
        digest.update(f'{name}|{t.dtype}|{tuple(t.shape)}|'.encode('utf-8'))
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return digest.hexdigest()
