"""Every mmscalekd module imports, and importing them changes nothing in other libraries."""
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import mmscalekd

ROOT = Path(__file__).resolve().parents[2]


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
    for expected in ('mmscalekd.registry', 'mmscalekd.utils.checkpoint', 'mmscalekd.models',
                     'mmscalekd.engine.hooks.safe_checkpoint_hook'):
        assert expected in names
    assert 'mmscalekd.utils.compat' not in names  # no import-time fixes any more


# Run in a fresh interpreter: record every attribute of the MMEngine / torch / torchvision
# modules and classes a patch would touch, import all of mmscalekd, compare by identity.
_PROBE = r'''
import importlib, inspect, json, pkgutil, sys, types
import torch, torchvision, timm  # the CI pair imports on its own, timm too
import mmengine, mmpretrain.models  # noqa: F401
MODULES = ['torch', 'torch.library', 'torch.serialization', 'torch.distributed',
           'torchvision', 'torchvision.ops', 'torchvision.models',
           'mmengine.dist', 'mmengine.dist.utils', 'mmengine.runner', 'mmengine.runner.runner',
           'mmengine.runner.checkpoint', 'mmengine.runner.loops', 'mmengine.hooks',
           'mmengine.hooks.checkpoint_hook', 'mmengine.fileio', 'mmengine.model']
mods = {name: importlib.import_module(name) for name in MODULES}

def snapshot():
    snap = {}
    for name, mod in mods.items():
        for key, value in list(vars(mod).items()):
            snap[f'{name}.{key}'] = value
            if inspect.isclass(value) and value.__module__.startswith(('mmengine', 'torchvision')):
                for attr, member in list(vars(value).items()):
                    snap[f'{name}.{key}.{attr}'] = member
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefix, loader in CheckpointLoader._schemes.items():
        snap[f'CheckpointLoader._schemes[{prefix!r}]'] = loader
    return snap

before = snapshot()
import mmscalekd
for info in pkgutil.walk_packages(mmscalekd.__path__, prefix='mmscalekd.'):
    importlib.import_module(info.name)
after = snapshot()
changed = sorted(k for k, v in before.items() if k in after and after[k] is not v)
removed = sorted(k for k in before if k not in after)
# New entries may only be submodules that the imports loaded (``mmengine.foo`` attributes).
added = sorted(k for k in after if k not in before
               and not isinstance(after[k], types.ModuleType))
print(json.dumps(dict(n=len(before), changed=changed, removed=removed, added=added)))
'''


@pytest.mark.slow
def test_importing_mmscalekd_leaves_mmengine_and_torchvision_objects_alone() -> None:
    out = subprocess.run([sys.executable, '-c', _PROBE], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report['n'] > 2000  # the snapshot really covers the modules and classes
    assert report['changed'] == [] and report['removed'] == [] and report['added'] == [], report


def test_version_is_exposed() -> None:
    from mmscalekd.version import __version__
    assert mmscalekd.__version__ == __version__
    assert __version__.count('.') == 2
