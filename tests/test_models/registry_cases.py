"""One minimal case per registered mmscalekd module, for table-driven tests.

Each entry of ``CASES`` is ``dict(type=..., cfg=..., inputs=...)``:

- ``type``: the registered name;
- ``cfg``: keyword arguments for ``MODELS.build(dict(type=type, **cfg))``;
- ``inputs``: forward keyword arguments as ``name -> shape`` (a tuple; ``None`` passes None).
  An input named ``target`` is a teacher tensor that must receive no gradient.

Use :func:`make_inputs` to turn ``inputs`` into tensors. ``test_registry_cases.py`` builds every
case, calls ``module(**inputs)`` (the output may be a tensor or a dict of tensors), and checks the
output is finite and that every trainable parameter and every non-target input gets a gradient.
"""
from typing import Dict, Optional

import torch

CASES = [
    dict(type='CrossAttentionProjector',
         cfg=dict(in_channels=8, embed_dims=16, student_hw=(6, 4), query_hw=(3, 2),
                  num_heads=4, softmax_scale=5.0),
         inputs=dict(x=(2, 8, 6, 4))),
    dict(type='CrossAttentionProjector',
         cfg=dict(in_channels=8, embed_dims=16, student_hw=(4, 4), query_hw=(2, 2),
                  num_heads=2, learnable_query=False, stem_norm='LN', fused_attention=False),
         inputs=dict(x=(2, 16, 8), query=(2, 4, 16))),
    dict(type='DualViewMimicLoss',
         cfg=dict(alpha=(0.08, 0.06)),
         inputs=dict(pred_spatial=(2, 8, 3, 2), pred_freq=(2, 8, 3, 2), target=(2, 8, 3, 2))),
    dict(type='DualViewMimicLoss',
         cfg=dict(alpha=(0.08, 0.0), dc_removal='dct'),
         inputs=dict(pred_spatial=(2, 6, 8), pred_freq=None, target=(2, 8, 3, 2))),
    dict(type='SoftTargetKDLoss',
         cfg=dict(temperature=2.0, loss_weight=0.5, mode='ce'),
         inputs=dict(pred=(2, 10), target=(2, 10))),
    dict(type='SoftTargetKDLoss',
         cfg=dict(mode='kl'),
         inputs=dict(pred=(2, 10), target=(2, 10))),
    dict(type='SymmetricKLLoss',
         cfg=dict(mode='skl'),
         inputs=dict(pred=(2, 10), target=(2, 10))),
    dict(type='SymmetricKLLoss',
         cfg=dict(temperature=2.0, mode='js'),
         inputs=dict(pred=(2, 10), target=(2, 10))),
]


def case_id(case: dict) -> str:
    """A readable pytest id for a case."""
    opts = ','.join(f'{k}={v}' for k, v in case['cfg'].items()
                    if k in ('mode', 'learnable_query', 'dc_removal', 'stem_norm'))
    return f"{case['type']}[{opts}]" if opts else case['type']


def make_inputs(case: dict,
                device: Optional[torch.device] = None) -> Dict[str, Optional[torch.Tensor]]:
    """Random leaf tensors (``requires_grad=True``) for ``case['inputs']``.

    Args:
        case (dict): An entry of :data:`CASES`.
        device (torch.device, optional): Where to put the tensors. Defaults to None (CPU).

    Returns:
        dict[str, Tensor | None]: Forward keyword arguments.
    """
    return {
        name: None if shape is None else torch.randn(*shape, device=device, requires_grad=True)
        for name, shape in case['inputs'].items()
    }
