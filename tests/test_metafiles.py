"""The model zoo (model-index.yml + metafiles) is consistent: tools/misc/check_metafiles.py."""
from __future__ import annotations

import importlib.util
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _checker():
    spec = importlib.util.spec_from_file_location(
        'check_metafiles', osp.join(ROOT, 'tools', 'misc', 'check_metafiles.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_zoo_is_consistent():
    problems = _checker().check_index(osp.join(ROOT, 'model-index.yml'))
    assert problems == []


def test_checker_reports_problems(tmp_path):
    (tmp_path / 'configs').mkdir()
    (tmp_path / 'configs' / 'ok.py').write_text("model = dict(type='X')\n")
    (tmp_path / 'configs' / 'bad.py').write_text('model = dict(\n')
    (tmp_path / 'meta.yml').write_text(
        'Collections:\n  - Name: C\nModels:\n'
        '  - {Name: a, In Collection: C, Metadata: {}, Config: configs/ok.py, Weights: null,\n'
        '     Results: [{Task: T, Dataset: D, Metrics: {Top 1 Accuracy: 1.0}}]}\n'
        '  - {Name: a, In Collection: Z, Metadata: {}, Config: configs/bad.py, Weights: null,\n'
        '     Results: [{Task: T}]}\n'
        '  - {Name: b, In Collection: C, Config: configs/missing.py, Results: []}\n')
    (tmp_path / 'model-index.yml').write_text('Import:\n  - meta.yml\n')
    mod = _checker()
    problems = mod.check_index(str(tmp_path / 'model-index.yml'))
    text = '\n'.join(problems)
    assert 'duplicate name' in text
    assert "unknown collection 'Z'" in text
    assert 'does not parse' in text
    assert "a result lacks ['Dataset', 'Metrics']" in text
    assert 'configs/missing.py does not exist' in text
    assert 'b: missing "Metadata"' in text and 'b: missing "Weights"' in text
    assert '"Results" must be a non-empty list' in text
    assert mod.main(['--index', str(tmp_path / 'model-index.yml'), '--no-parse']) == 1
