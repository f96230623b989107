"""Build and run every case of ``scalekd_cases/registry_cases.py`` by kind."""
import pytest
import torch

from mmscalekd.models.teachers import BaseTeacher
from mmscalekd.registry import MODELS
from tests import _builders as B
from tests.test_models.scalekd_cases.registry_cases import CASES


@pytest.mark.parametrize('case', CASES, ids=lambda c: c['type'])
def test_case_builds_and_runs(case: dict) -> None:
    module = MODELS.build(case['cfg'])
    assert isinstance(module, MODELS.get(case['type']))  # TimmTeacher gives its family's class
    x, samples = B.batch(case['size'])
    if isinstance(module, BaseTeacher):
        out = module.forward_targets(x)
        assert out.feature.shape == (2, module.final_dims, *module.final_hw)
        assert not any(p.requires_grad for p in module.parameters())
        return
    if case['type'] == 'ScaleKDDistiller':
        outs = list(module.loss(x, samples).values())
    else:
        outs = list(module(x))
    assert outs and all(torch.isfinite(o).all() for o in outs)
    sum(o.float().sum() for o in outs).backward()
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'parameters without gradient: {missing}'
