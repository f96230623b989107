"""Every mmscalekd module imports, and the compat fixes are in effect."""
import importlib
import pkgutil

import pytest

import mmscalekd


def _all_modules() -> list:
    names = ['mmscalekd']
    for info in pkgutil.walk_packages(mmscalekd.__path__, prefix='mmscalekd.'):
        names.append(info.name)
    return names


@pytest.mark.parametrize('name', _all_modules())
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_module_list_is_not_trivial() -> None:
    names = _all_modules()
    for expected in ('mmscalekd.registry', 'mmscalekd.utils.compat', 'mmscalekd.models'):
        assert expected in names


def test_torchvision_and_mmpretrain_models_import() -> None:
    # W1: without the fix this raises "operator torchvision::nms does not exist".
    import mmpretrain.models  # noqa: F401
    import torchvision
    assert torchvision.transforms.Compose is not None


def test_version_is_exposed() -> None:
    from mmscalekd.version import __version__
    assert mmscalekd.__version__ == __version__
    assert __version__.count('.') == 2
