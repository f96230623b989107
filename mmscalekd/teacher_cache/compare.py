"""How far the soft targets of one cache are from another's (top-k fp16 vs all classes fp32)."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .manifest import CacheManifest, TeacherCacheError
from .records import decode_dense_logits


def compare_caches(reference: CacheManifest, other: CacheManifest,
                   max_samples: Optional[int] = None) -> Dict[str, float]:
    """Target deviation of ``other`` from ``reference`` over the samples of both.

    Args:
        reference (CacheManifest): Usually a cache of all classes in fp32.
        other (CacheManifest): A cache of the same run (same ``config_sha256``).
        max_samples (int, optional): Compare only the first this many records of each epoch.

    Returns:
        dict: ``samples``, ``mean_kl`` (batch mean of ``KL(p_ref || p_other)``), ``mean_max_abs_dp``
        (mean over samples of ``max |p_ref - p_other|``), ``max_abs_dp`` (over everything),
        ``mean_rest_mass`` (mean probability of the classes outside ``other``'s top-k) and
        ``top1_agree``.
    """
    if reference.config_sha256 != other.config_sha256:
        raise TeacherCacheError('the two caches belong to different runs (config_sha256 '
                                f'{reference.config_sha256[:12]} vs {other.config_sha256[:12]})')
    k_classes = reference.num_classes
    kls, max_dps, rests, agree = [], [], [], []
    for side in other.shards:
        if side['epoch'] >= reference.epochs:
            continue
        a = reference.open_part(side['epoch'], side['part'])
        b = other.open_part(side['epoch'], side['part'])
        rows = len(b) if max_samples is None else min(len(b), max(0, max_samples - side['start']))
        if rows <= 0:
            continue
        ref = torch.stack([decode_dense_logits(a['index'][i], a['logit'][i], float(a['lse'][i]),
                                               k_classes) for i in range(rows)])
        oth = torch.stack([decode_dense_logits(b['index'][i], b['logit'][i], float(b['lse'][i]),
                                               k_classes) for i in range(rows)])
        log_r, log_o = F.log_softmax(ref, dim=1), F.log_softmax(oth, dim=1)
        p_r = log_r.exp()
        kls.append((p_r * (log_r - log_o)).sum(dim=1))
        max_dps.append((p_r - log_o.exp()).abs().max(dim=1).values)
        top = torch.from_numpy(np.asarray(b['index'][:rows], dtype=np.int64))
        rests.append(1 - p_r.gather(1, top).sum(dim=1))
        agree.append((ref.argmax(dim=1) == oth.argmax(dim=1)).float())
    if not kls:
        raise TeacherCacheError('no record to compare')
    kl, dp, rest, ag = (torch.cat(x) for x in (kls, max_dps, rests, agree))
    return dict(samples=int(kl.numel()), mean_kl=float(kl.mean()),
                mean_max_abs_dp=float(dp.mean()), max_abs_dp=float(dp.max()),
                mean_rest_mass=float(rest.mean()), top1_agree=float(ag.mean()))
