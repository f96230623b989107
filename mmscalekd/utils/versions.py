"""Versions of the OpenMMLab stack, read by import name (upstream or the OneDL forks).

``mmengine``, ``mmcv`` and ``mmpretrain`` are published upstream under those
names and by OneDL as ``onedl-mmengine``, ``onedl-mmcv``, ``onedl-mmpretrain``
(same import names, see ``docs/compatibility.md``). What matters is the package
Python imports, so versions are read from the importable package's own
``version.py`` (without importing the package, which for mmpretrain would import
half of the stack), not from a distribution name.
"""
from __future__ import annotations

import ast
import importlib.util
import os.path as osp
import warnings
from typing import Dict, Optional, Tuple

#: Releases CI tests (README, "Version matrix"): ``[lower, upper)`` per import name.
TESTED: Dict[str, Tuple[str, str]] = {
    'mmengine': ('0.10.0', '0.11.0'),
    'mmcv': ('2.1.0', '2.2.0'),
    'mmpretrain': ('1.2.0', '1.3.0'),
}


def _release(version: str) -> Tuple[int, ...]:
    """``'0.10.7'`` -> ``(0, 10, 7)``; suffixes (``rc1``, ``+cu130``, ``.post2``) dropped."""
    parts = []
    for piece in version.split('+')[0].split('.'):
        digits = ''
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts)


def installed_version(name: str) -> Optional[str]:
    """``__version__`` of the package that ``import name`` would load, or None.

    Args:
        name (str): Import name, e.g. ``'mmengine'``.

    Returns:
        str | None: The version string of its ``version.py`` (falling back to
        importing the package when it has none), None when it is not installed.
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or ():
        path = osp.join(folder, 'version.py')
        if not osp.isfile(path):
            continue
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        for node in tree.body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                    and any(getattr(t, 'id', None) == '__version__' for t in node.targets)):
                return str(node.value.value)
    module = importlib.import_module(name)
    version = getattr(module, '__version__', None)
    return None if version is None else str(version)


def is_tested(name: str, version: Optional[str] = None) -> bool:
    """Whether ``version`` (default: the installed one) is in the tested range of ``name``."""
    version = installed_version(name) if version is None else version
    if version is None or name not in TESTED:
        return False
    low, high = TESTED[name]
    return _release(low) <= _release(version) < _release(high)


def check_versions() -> None:
    """Warn (never fail) for every installed package outside its tested range."""
    for name, (low, high) in TESTED.items():
        found = installed_version(name)
        if found is not None and not is_tested(name, found):
            warnings.warn(
                f'mmscalekd is tested with {name} >={low},<{high}; found {name} {found} '
                '(the import name; upstream or a fork). Things may break: see '
                'docs/compatibility.md for what was tried.', stacklevel=3)
