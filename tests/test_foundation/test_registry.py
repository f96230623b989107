"""Our registries resolve our types and bare mmpretrain types."""
import pytest
from mmengine.registry import DefaultScope

from mmscalekd.registry import DATASETS, HOOKS, MODELS, OPTIMIZERS, TRANSFORMS


def test_registry_scope_and_parent() -> None:
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    assert MODELS.scope == 'mmscalekd'
    assert MODELS.parent is PRETRAIN_MODELS


@pytest.mark.parametrize('registry,name', [
    (MODELS, 'ImageClassifier'),
    (MODELS, 'ResNet'),
    (MODELS, 'SwinTransformer'),
    (MODELS, 'VisionTransformer'),
    (MODELS, 'CrossEntropyLoss'),
    (DATASETS, 'ImageNet'),
    (DATASETS, 'FashionMNIST'),
    (TRANSFORMS, 'PackInputs'),
    (HOOKS, 'CheckpointHook'),
    (OPTIMIZERS, 'SGD'),
])
def test_bare_mmpretrain_names_resolve(registry, name: str) -> None:
    assert DefaultScope.get_current_instance().scope_name == 'mmscalekd'
    assert registry.get(name) is not None


def test_build_bare_mmpretrain_classifier_through_our_registry() -> None:
    import torch
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=5, in_channels=64)))
    out = model(torch.randn(2, 3, 32, 32), mode='tensor')
    assert out.shape == (2, 5)


def test_unknown_type_names_the_type() -> None:
    with pytest.raises(KeyError, match='NoSuchDistiller'):
        MODELS.build(dict(type='NoSuchDistiller'))


def test_every_registered_mmscalekd_module_has_a_test_case() -> None:
    """A new registered module cannot land without an entry in the test-case tables."""
    import importlib
    import pkgutil

    import tests  # noqa: F401
    covered = set()
    for info in pkgutil.walk_packages(['tests'], prefix='tests.'):
        if info.name.rsplit('.', 1)[-1] == 'registry_cases':
            module = importlib.import_module(info.name)
            covered |= {case['type'] for case in module.CASES}
    own = set(MODELS.module_dict)  # only this node: mmscalekd's own modules
    missing = sorted(own - covered)
    assert not missing, f'registered without a test case in a registry_cases.py: {missing}'
