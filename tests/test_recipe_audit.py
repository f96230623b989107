"""The recipe audit (configs/scalekd/recipe_audit.yml): the table is well formed, the page is
its rendering, and every ScaleKD config still has the values the audit records."""
from __future__ import annotations

import copy
import glob
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

from mmscalekd.utils.recipe_audit import (
    MISSING,
    VERDICTS,
    AuditTableError,
    check_config,
    load_audit,
    render_markdown,
    resolve,
)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TABLE_PATH = osp.join(ROOT, 'configs', 'scalekd', 'recipe_audit.yml')
PAGE_PATH = osp.join(ROOT, 'docs', 'recipe_audit.md')
SCALEKD = sorted(osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', 'scalekd', '*.py')))
TABLE = load_audit(TABLE_PATH)


def _cfg(name: str) -> dict:
    return Config.fromfile(osp.join(ROOT, 'configs', 'scalekd', name)).to_dict()


def test_table_covers_every_scalekd_config_and_the_official_history():
    assert sorted(TABLE.configs) == SCALEKD
    assert len(TABLE.official_configs) == 17
    mapped = [oc.ours for oc in TABLE.official_configs if oc.ours]
    assert sorted(mapped) == SCALEKD  # each of ours maps to exactly one official config
    for oc in TABLE.official_configs:
        assert oc.ours or oc.note, f'{oc.path}: no config of ours and no reason'
    for name in SCALEKD:
        settings = {r.setting for r in TABLE.records_for(name)}
        assert set(TABLE.required_settings) <= settings
        for rec in TABLE.records_for(name):
            assert rec.verdict in VERDICTS
            assert rec.sources and rec.checks


def test_page_is_the_rendered_table():
    with open(PAGE_PATH, encoding='utf-8') as f:
        page = f.read()
    assert page == render_markdown(TABLE), (
        'docs/recipe_audit.md is stale: run python tools/misc/render_recipe_audit.py')


@pytest.mark.parametrize('name', SCALEKD)
def test_config_matches_the_audit(name):
    assert check_config(_cfg(name), TABLE.records_for(name), name) == []


@pytest.mark.parametrize('edit, setting', [
    (lambda c: c['model']['student']['backbone'].__setitem__('drop_path_rate', 0.1),
     'student.drop_path_rate'),
    (lambda c: c['train_dataloader']['dataset']['pipeline'][0].__setitem__(
        'type', 'LoadImageFromFile'), 'data.loader'),
    (lambda c: c.pop('custom_hooks'), 'ema'),
    (lambda c: c['param_scheduler'][1].__setitem__('eta_min', 1e-6), 'sched.main'),
    (lambda c: c['model']['distill_stages'][1]['loss'].__setitem__('alpha', (0.08, 0.0)),
     'dfm.alpha'),
    (lambda c: c['train_dataloader'].__setitem__('batch_size', 64), 'batch.per_gpu'),
    (lambda c: c['model'].__setitem__('teacher_train_mode', True), 'teacher.mode'),
])
def test_drift_from_the_audit_is_reported(edit, setting):
    name = 'scalekd_swin-l_vit-s16_32xb32_300e_in1k.py'
    cfg = copy.deepcopy(_cfg(name))
    edit(cfg)
    problems = check_config(cfg, TABLE.records_for(name), name)
    assert problems and all(setting in p or 'batch.total' in p for p in problems), problems
    assert any(f': {setting}: ' in p for p in problems)


def test_resolve_paths():
    cfg = {'a': {'b': [dict(type='X', v=1), dict(type='Y', v=2)]},
           'stages': [dict(name='s3', k=3)], 'sched': dict(type='Cos', eta=0),
           'train_dataloader': dict(batch_size=16)}
    assert resolve(cfg, 'a.b[type=Y].v') == 2
    assert resolve(cfg, 'a.b[0].v') == 1 and resolve(cfg, 'a.b[-1].v') == 2
    assert resolve(cfg, 'stages[name=s3].k') == 3
    assert resolve(cfg, 'sched[type=Cos].eta') == 0  # a selector on a dict matches the dict
    assert resolve(cfg, 'a.b[type=Z]') is MISSING and resolve(cfg, 'a.c') is MISSING
    assert resolve(cfg, 'a.b[5]') is MISSING
    name = 'scalekd_x_y_32xb16_300e_in1k.py'
    assert resolve(cfg, '@name.gpus', name) == 32 and resolve(cfg, '@name.batch', name) == 16
    assert resolve(cfg, '@total_batch', name) == 512
    with pytest.raises(AuditTableError, match='unknown pseudo key'):
        resolve(cfg, '@name.nodes', name)


def _write_table(tmp_path, mutate) -> str:
    with open(TABLE_PATH, encoding='utf-8') as f:
        data = yaml.safe_load(f)
    name = 'scalekd_swin-l_resnet50_32xb64_300e_in1k.py'
    data['configs'] = {name: data['configs'][name]}
    mutate(data['configs'][name]['settings'], data)
    path = tmp_path / 'audit.yml'
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize('mutate, message', [
    (lambda s, d: s[0].__setitem__('verdict', 'ok'), 'verdict must be one of'),
    (lambda s, d: (s[0].__setitem__('verdict', 'fixed'), s[0].pop('reason', None)),
     'needs a "reason"'),
    (lambda s, d: s[0].__setitem__('source', ['nowhere:3']), "unknown source 'nowhere'"),
    (lambda s, d: s[0].__setitem__('source', ['distiller:a-b']), 'lines must look like'),
    (lambda s, d: s.append(copy.deepcopy(s[0])), 'duplicate setting'),
    (lambda s, d: s.pop(0), 'required settings without a record'),
    (lambda s, d: s[0].__setitem__('ours', [{'key': 'x'}]), 'exactly one of "value"'),
    (lambda s, d: s[0].__setitem__('ours', [{'key': 'x', 'value': 1, 'vale': 2}]),
     'unknown check field'),
    (lambda s, d: d['sources']['distiller'].__setitem__('read', 'memory'), 'read must be one of'),
])
def test_malformed_tables_are_rejected_with_the_record(tmp_path, mutate, message):
    with pytest.raises(AuditTableError, match=message):
        load_audit(_write_table(tmp_path, mutate))


def test_render_tool_check_mode(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'render_recipe_audit', osp.join(ROOT, 'tools', 'misc', 'render_recipe_audit.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'page.md'
    assert tool.main(['--out', str(out), '--check']) == 1  # no page yet: stale
    assert tool.main(['--out', str(out)]) == 0
    assert out.read_text() == render_markdown(TABLE)
    assert tool.main(['--out', str(out), '--check']) == 0
    out.write_text(out.read_text() + 'edited by hand\n')
    assert tool.main(['--out', str(out), '--check']) == 1


TRAIN_PIPELINE_CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'configs', '_base_', 'datasets', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'scalekd', '*.py')) +
    glob.glob(osp.join(ROOT, 'configs', 'kd', '*.py')))


@pytest.mark.parametrize('path', TRAIN_PIPELINE_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_train_pipelines_skip_corrupt_images(path):
    cfg = Config.fromfile(path)
    pipelines = [cfg.train_dataloader.dataset.pipeline]
    if 'train_pipeline' in cfg:
        pipelines.append(cfg.train_pipeline)
    for pipeline in pipelines:
        assert pipeline[0]['type'] == 'LoadImageFromFileOrSkip', pipeline[0]
    for key in ('val_dataloader', 'test_dataloader'):  # evaluation must see every image
        assert cfg[key].dataset.pipeline[0]['type'] == 'LoadImageFromFile'
