"""mmscalekd: distilling vision backbones from strong teachers (ScaleKD, SSLD).

Importing the package applies the compatibility fixes of
:mod:`mmscalekd.utils.compat` before anything imports torchvision or mmpretrain.
"""
import warnings

from .utils import compat as _compat

_compat.apply()

from .version import __version__  # noqa: E402

# Versions we test against (see README's version matrix); others may work, so we
# warn instead of refusing to import.
_TESTED = {'mmengine': ('0.10.', ), 'mmcv': ('2.1.', ), 'mmpretrain': ('1.2.', )}


def _check_versions() -> None:
    from importlib.metadata import PackageNotFoundError, version
    for pkg, prefixes in _TESTED.items():
        try:
            found = version(pkg)
        except PackageNotFoundError:
            try:
                found = version(pkg + '-lite')
            except PackageNotFoundError:
                continue
        if not found.startswith(prefixes):
            warnings.warn(f'mmscalekd is tested with {pkg} {"/".join(prefixes)}x, '
                          f'found {found}; things may break.', stacklevel=2)


_check_versions()

__all__ = ['__version__']
