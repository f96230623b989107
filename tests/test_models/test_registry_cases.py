"""Table-driven checks of every connector/loss case in ``registry_cases.CASES``."""
import pytest
import torch

from mmscalekd.registry import MODELS
from tests.test_models.registry_cases import CASES, case_id, make_inputs


@pytest.mark.parametrize('case', CASES, ids=case_id)
def test_registered_case_forward_backward(case: dict, device: torch.device) -> None:
    module = MODELS.build(dict(type=case['type'], **case['cfg'])).to(device)
    assert type(module).__name__ == case['type']
    inputs = make_inputs(case, device)
    out = module(**inputs)

    outs = list(out.values()) if isinstance(out, dict) else [out]
    assert outs, 'the module returned no tensors'
    for o in outs:
        assert isinstance(o, torch.Tensor)
        assert torch.isfinite(o).all()
    total = sum(o.float().sum() for o in outs)
    total.backward()

    params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    missing = [n for n, p in params if p.grad is None]
    assert not missing, f'parameters without gradient: {missing}'
    for name, x in inputs.items():
        if x is None:
            continue
        if name == 'target':
            assert x.grad is None, 'the teacher target must not receive a gradient'
        else:
            assert x.grad is not None and torch.isfinite(x.grad).all(), name


def test_every_case_type_is_registered() -> None:
    for case in CASES:
        assert MODELS.get(case['type']) is not None, case['type']
