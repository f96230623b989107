"""Random-number-generator state as plain tensors and ints, for exact resume.

MMEngine checkpoints hold weights, optimizer, schedulers and the message hub,
but not the Python / NumPy / torch RNG states that random augmentation,
stochastic depth and dropout draw from. These helpers capture and restore
those states in a form that ``torch.load(weights_only=True)`` reads without
any allow-list entry: tensors, ints, floats, None, lists and dicts.
"""
from __future__ import annotations

import random
from typing import Any, Dict

import numpy as np
import torch


def capture_rng_state() -> Dict[str, Any]:
    """The current Python, NumPy, torch (CPU) and CUDA RNG states.

    Returns:
        dict: ``python``, ``numpy``, ``torch`` and ``cuda`` (a list, empty
        without CUDA); only tensors, ints, floats and None inside.
    """
    version, words, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    assert name == 'MT19937', name
    return dict(
        python=dict(version=int(version), words=torch.tensor(words, dtype=torch.int64),
                    gauss=gauss),
        numpy=dict(keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                   has_gauss=int(has_gauss), cached_gaussian=float(cached)),
        torch=torch.get_rng_state(),
        cuda=list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    )


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`.

    Args:
        state (dict): As returned by :func:`capture_rng_state` (possibly after
            a save / ``weights_only`` load round trip).
    """
    py = state['python']
    random.setstate((py['version'], tuple(int(w) for w in py['words'].tolist()), py['gauss']))
    npy = state['numpy']
    np.random.set_state(('MT19937', npy['keys'].numpy().astype(np.uint32), npy['pos'],
                         npy['has_gauss'], npy['cached_gaussian']))
    torch.set_rng_state(state['torch'])
    if state.get('cuda') and torch.cuda.is_available():
        if len(state['cuda']) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state['cuda'])
