"""Every class registered anywhere in ``mmscalekd/`` is reachable by name after
``register_all_modules`` and exported by its package.

The list is derived by scanning the package source for ``@<REGISTRY>.register_module(...)``
decorators, so a new module that is registered but not imported from its package's
``__init__`` (and so unknown to a config) fails here, naming its file.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / 'mmscalekd'


class Registered(NamedTuple):
    registry: str  # attribute of mmscalekd.registry, e.g. 'MODELS'
    name: str  # the registered name
    cls: str  # the class name
    module: str  # dotted module path
    file: str  # path relative to the repository root, with the line


def _registry_of(decorator: ast.expr) -> Optional[tuple]:
    """``(REGISTRY, name or None)`` for ``@REGISTRY.register_module(...)``, else None."""
    call = decorator if isinstance(decorator, ast.Call) else None
    func = call.func if call is not None else decorator
    if not (isinstance(func, ast.Attribute) and func.attr == 'register_module'
            and isinstance(func.value, ast.Name)):
        return None
    name = None
    if call is not None:
        for kw in call.keywords:
            if kw.arg == 'name' and isinstance(kw.value, ast.Constant):
                name = kw.value.value
        if call.args and isinstance(call.args[0], ast.Constant):
            name = call.args[0].value
    return func.value.id, name


def scan_registered(package: Path = PACKAGE) -> List[Registered]:
    """Every ``@REGISTRY.register_module()``-decorated class under ``package``."""
    found: List[Registered] = []
    for path in sorted(package.rglob('*.py')):
        tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
        rel = path.relative_to(package.parent)
        module = '.'.join(rel.with_suffix('').parts)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for deco in node.decorator_list:
                hit = _registry_of(deco)
                if hit is not None:
                    found.append(Registered(hit[0], hit[1] or node.name, node.name, module,
                                            f'{rel}:{node.lineno}'))
    return found


REGISTERED = scan_registered()

_PROBE = '''
import json, sys
from mmscalekd.utils import register_all_modules
register_all_modules(init_default_scope=False)
import mmscalekd.registry as r
out = {}
for reg, name in json.loads(sys.argv[1]):
    cls = getattr(r, reg)._module_dict.get(name)
    out[reg + ':' + name] = None if cls is None else cls.__module__
print(json.dumps(out))
'''


@pytest.fixture(scope='module')
def resolved() -> Dict[str, Optional[str]]:
    """Registered name -> module of the class, in a fresh process after register_all_modules.

    A fresh process: in this one, other tests may already have imported a module that
    ``register_all_modules`` alone would not.
    """
    query = json.dumps([[r.registry, r.name] for r in REGISTERED])
    proc = subprocess.run([sys.executable, '-c', _PROBE, query], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_scan_finds_every_kind_of_module() -> None:
    kinds = {r.registry for r in REGISTERED}
    assert {'MODELS', 'DATASETS', 'TRANSFORMS', 'HOOKS', 'LOOPS', 'DATA_SAMPLERS'} <= kinds
    names = {r.cls for r in REGISTERED}
    for expected in ('ScaleKDDistiller', 'CrossAttentionProjector', 'DualViewMimicLoss',
                     'SafeCheckpointHook', 'TeacherCacheDataset', 'MobileNetV1'):
        assert expected in names
    duplicates = {(r.registry, r.name) for r in REGISTERED
                  if sum((o.registry, o.name) == (r.registry, r.name) for o in REGISTERED) > 1}
    assert not duplicates, f'registered twice: {sorted(duplicates)}'


def test_every_registered_class_resolves_after_register_all_modules(
        resolved: Dict[str, Optional[str]]) -> None:
    problems = []
    for r in REGISTERED:
        got = resolved[f'{r.registry}:{r.name}']
        if got is None:
            problems.append(f'{r.file}: {r.registry} {r.name!r} is not registered after '
                            'register_all_modules (import it in its package __init__)')
        elif got != r.module:
            problems.append(f'{r.file}: {r.registry} {r.name!r} resolves to a class of {got}')
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('entry', REGISTERED, ids=lambda r: f'{r.registry}:{r.name}')
def test_registered_class_is_exported_by_its_package(entry: Registered) -> None:
    init = ROOT / Path(*entry.module.split('.')[:-1]) / '__init__.py'
    tree = ast.parse(init.read_text(encoding='utf-8'))
    exported: List[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '__all__' for t in node.targets):
            exported = list(ast.literal_eval(node.value))
    assert entry.cls in exported, \
        f'{entry.file}: {entry.cls} is registered but not in __all__ of {init.relative_to(ROOT)}'


def test_scan_sees_an_unimported_module(tmp_path: Path) -> None:
    pkg = tmp_path / 'mmscalekd' / 'models' / 'losses'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text("__all__ = []\n")
    (pkg / 'new_loss.py').write_text(
        'from mmscalekd.registry import MODELS\n\n\n'
        '@MODELS.register_module(name="Renamed")\nclass NewLoss:\n    pass\n\n\n'
        '@MODELS.register_module\nclass Bare:\n    pass\n')
    found = scan_registered(tmp_path / 'mmscalekd')
    assert [(r.registry, r.name, r.cls, r.module, r.file) for r in found] == [
        ('MODELS', 'Renamed', 'NewLoss', 'mmscalekd.models.losses.new_loss',
         'mmscalekd/models/losses/new_loss.py:5'),
        ('MODELS', 'Bare', 'Bare', 'mmscalekd.models.losses.new_loss',
         'mmscalekd/models/losses/new_loss.py:10')]
