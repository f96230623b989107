"""Wrong inputs to the command-line tools: each fails before any work, naming the value.

The second table next to ``test_bad_inputs.py`` (which covers the library: models, datasets,
hooks). Here a new user's (or an adversary's) command lines against ``tools/train.py``,
``tools/test.py``, the converters, ``plot_curves.py`` and ``dist_train.sh`` / ``dist_test.sh``:
wrong paths, folders for files, empty and foreign files, wrong config kinds, misspelt and
malformed ``--cfg-options``, conflicting options, checkpoints of the wrong kind for
``--resume``, outputs that exist. Every case asserts the exit status (2: a usage error found
in the command line; 1: found in the config or a file) and the words of the message: the bad
value, what is accepted and the next step.
"""
import importlib.util
import os
import re
import socket
import subprocess
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Callable, Dict, List

import pytest
import torch
from mmengine.config import Config

from mmscalekd.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / 'tests/data/configs/tiny_resnet_custom.py')
MMDET = str(ROOT / 'configs/downstream/mmdet/mask-rcnn_scalekd-swin-l-resnet50_fpn_1x_coco.py')
BASE_DATASET = str(ROOT / 'configs/_base_/datasets/imagenet_bs32_traditional.py')
TOOLS = {
    'train': 'tools/train.py', 'test': 'tools/test.py',
    'extract': 'tools/model_converters/extract_student.py',
    'publish': 'tools/model_converters/publish_model.py',
    'plot': 'tools/analysis_tools/plot_curves.py',
}
_loaded: Dict[str, ModuleType] = {}


def _tool(name: str) -> ModuleType:
    if name not in _loaded:
        spec = importlib.util.spec_from_file_location(f'{name}_tool', ROOT / TOOLS[name])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _loaded[name] = module
    return _loaded[name]


@pytest.fixture(scope='module')
def files(tmp_path_factory) -> Path:
    """Every bad (and a few good) input file, made once for the table."""
    import cv2
    import numpy as np
    root = tmp_path_factory.mktemp('bad_inputs')
    for cls in ('a', 'b'):
        (root / 'imgs' / cls).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(root / 'imgs' / cls / f'{i}.png'),
                        np.full((32, 32, 3), 60 * i, np.uint8))
    (root / 'adir').mkdir()
    (root / 'bad.py').write_text('a = dict(x=1\nb = 2\n')
    (root / 'child.py').write_text("_base_ = ['bad.py']\nc = 3\n")
    (root / 'base_missing.py').write_text("_base_ = ['nope.py']\nc = 3\n")
    (root / 'empty.py').write_text('')
    (root / 'name_error.py').write_text('a = 1\nb = undefined_name + 1\n')
    (root / 'binary.py').write_bytes(bytes(range(128, 256)))
    (root / 'broken.json').write_text('{"model": {"type": "ImageClassifier"')
    (root / 'cfg.txt').write_text("model = dict(type='ImageClassifier')\n")
    (root / 'empty.pth').write_bytes(b'')
    (root / 'html.pth').write_text('<html>404 Not Found</html>')
    torch.save(torch.zeros(3), root / 'tensor.pth')

    model = MODELS.build(Config.fromfile(TINY).model)
    state = model.state_dict()
    meta = {'epoch': 0, 'iter': 2}
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    # What extract_student.py writes: weights and meta, no training state.
    torch.save({'state_dict': state, 'meta': dict(meta, converter='mmscalekd extract_student')},
               root / 'student.pth')
    torch.save(dict(state), root / 'bare.pth')
    # A distiller's training checkpoint (student.*, connectors.*) and one of another optimizer
    # grouping (as with another paramwise_cfg).
    distilled = {f'student.{k}': v for k, v in state.items()}
    distilled['connectors.s4_spatial.query'] = torch.zeros(4, 8)
    torch.save({'state_dict': distilled, 'meta': meta, 'message_hub': {},
                'optimizer': sgd.state_dict()}, root / 'distill_train.pth')
    params = list(model.parameters())
    grouped = torch.optim.SGD([{'params': params[:5]}, {'params': params[5:]}], lr=0.1)
    torch.save({'state_dict': state, 'meta': meta, 'message_hub': {},
                'optimizer': grouped.state_dict()}, root / 'grouped_train.pth')
    # The backbone of a distiller checkpoint, not extracted (student.backbone.*).
    torch.save({'state_dict': {'student.backbone.conv1.weight': torch.zeros(1),
                               'teacher.backbone.w': torch.zeros(1)}}, root / 'distill.pth')
    torch.save({'state_dict': {'stem.conv.weight': torch.zeros(1)}}, root / 'timm_like.pth')
    torch.save({'state_dict': state}, root / 'preds.pkl')  # a checkpoint with a .pkl name
    (root / 'dangling').mkdir()
    (root / 'dangling' / 'last_checkpoint').write_text(str(root / 'gone' / 'iter_4.pth'))
    return root


def _data(root: Path, splits=('train', 'val', 'test')) -> List[str]:
    return [f'{s}_dataloader.dataset.data_root={root / "imgs"}' for s in splits]


# (id, tool, argv(files) -> list, exit status, regex on the message)
CLI_CASES = [
    # ---- tools/train.py: the config
    ('train_config_is_a_folder', 'train', lambda f: [str(f / 'adir')],
     2, r"config file '.*adir' is a folder, not a file"),
    ('train_config_empty', 'train', lambda f: [str(f / 'empty.py')],
     1, r'empty\.py\' has no `model`: it is not a complete config.*Pass a leaf config'),
    ('train_config_syntax_error', 'train', lambda f: [str(f / 'bad.py')],
     1, r"config '.*bad\.py' is not valid Python: .*bad\.py:1:9: '\(' was never closed\n"
        r'    a = dict\(x=1\n            \^\nFix the line above'),
    ('train_base_config_syntax_error', 'train', lambda f: [str(f / 'child.py')],
     1, r"config '.*child\.py' is not valid Python: .*bad\.py:1:9: .*\(a _base_ file of it\)"),
    ('train_base_config_missing', 'train', lambda f: [str(f / 'base_missing.py')],
     1, r"the _base_ file '.*nope\.py' named by '.*base_missing\.py' does not exist; _base_ "
        r'paths are relative'),
    ('train_config_name_error', 'train', lambda f: [str(f / 'name_error.py')],
     1, r"config '.*name_error\.py' fails while it is read: .*name_error\.py:2: NameError: name "
        r"'undefined_name' is not defined\n    b = undefined_name \+ 1"),
    ('train_config_binary_file', 'train', lambda f: [str(f / 'binary.py')],
     1, r"config file '.*binary\.py' is not UTF-8 text"),
    ('train_config_broken_json', 'train', lambda f: [str(f / 'broken.json')],
     1, r"config '.*broken\.json' is not valid JSON: JSONDecodeError: Expecting .*line 1 column"),
    ('train_config_not_a_config_format', 'train', lambda f: [str(f / 'cfg.txt')],
     1, r"extension '\.txt'; a config is one of \.py, \.json, \.yaml, \.yml"),
    ('train_checkpoint_given_as_config', 'train', lambda f: [str(f / 'student.pth')],
     1, r"extension '\.pth'.*looks like a checkpoint: the config comes first"),
    ('train_mmdet_config', 'train', lambda f: [MMDET],
     1, r"is an MMDetection config \(default_scope='mmdet'\); tools/train\.py runs mmscalekd "
        r"configs\. Run it with MMDetection's own tools/train\.py"),
    ('train_base_fragment_config', 'train', lambda f: [BASE_DATASET],
     1, r'imagenet_bs32_traditional\.py\' has no `model`'),
    # ---- tools/train.py: options
    ('train_cfg_options_unknown_top_level_key', 'train',
     lambda f: [TINY, '--cfg-options', 'trian_cfg.max_iters=1'],
     1, r"--cfg-options: unknown top-level key 'trian_cfg\.max_iters' \(did you mean "
        r"'train_cfg'.*Accepted: the keys of the config \(.*\) and the Runner's.*belongs in the "
        r'config file'),
    ('train_cfg_options_not_key_value', 'train', lambda f: [TINY, '--cfg-options', 'train_cfg'],
     2, r"--cfg-options: 'train_cfg' is not KEY=VALUE \(e\.g\. train_cfg\.max_iters=10"),
    ('train_cfg_options_empty_key', 'train', lambda f: [TINY, '--cfg-options', '=3'],
     2, r"'=3' is not KEY=VALUE"),
    ('train_data_root_missing', 'train',
     lambda f: [TINY, '--cfg-options', f'train_dataloader.dataset.data_root={f / "nowhere"}'],
     1, r"train_dataloader\.dataset\.data_root '.*nowhere' does not exist\. Point it at the "
        r'dataset folder, e\.g\. --cfg-options train_dataloader\.dataset\.data_root='),
    ('train_work_dir_is_a_file', 'train',
     lambda f: [TINY, '--work-dir', str(f / 'student.pth')],
     2, r"--work-dir '.*student\.pth' is a file; give a folder"),
    ('train_resume_folder', 'train', lambda f: [TINY, '--resume', str(f / 'adir')],
     2, r"--resume checkpoint '.*adir' is a folder.*--resume alone to continue"),
    ('train_resume_and_load_from_conflict', 'train',
     lambda f: [TINY, '--resume', str(f / 'grouped_train.pth'), '--cfg-options',
                f'load_from={f / "student.pth"}'],
     2, r"--resume '.*grouped_train\.pth' and --cfg-options load_from='.*student\.pth' name "
        r'different checkpoints; give one'),
    # ---- tools/train.py --resume with a checkpoint of the wrong kind (after the Runner is
    # built, before it loads anything)
    ('train_resume_student_checkpoint', 'train',
     lambda f: [TINY, '--resume', str(f / 'student.pth'), '--work-dir', str(f / 'w1'),
                '--cfg-options', *_data(f)],
     1, r"--resume '.*student\.pth' is a weights-only checkpoint \(student / classifier, made by "
        r'mmscalekd extract_student\): it lacks the training state a resume needs '
        r'\(message_hub\)\. --resume continues a run from a checkpoint its CheckpointHook '
        r'wrote.*load_from=.*student\.pth'),
    ('train_resume_bare_state_dict', 'train',
     lambda f: [TINY, '--resume', str(f / 'bare.pth'), '--work-dir', str(f / 'w2'),
                '--cfg-options', *_data(f)],
     1, r"is a bare state dict \(weights only\): it lacks .*\(state_dict, meta, message_hub\)"),
    ('train_resume_other_models_checkpoint', 'train',
     lambda f: [TINY, '--resume', str(f / 'distill_train.pth'), '--work-dir', str(f / 'w3'),
                '--cfg-options', *_data(f)],
     1, r'is a training checkpoint of a distiller whose weights do not match this model: 122 '
        r'weight\(s\) of this model are not in it \(e\.g\. backbone\.conv1\.weight.*123 of its '
        r'weights are not in this model.*own work dir, or drop --resume'),
    ('train_resume_other_optimizer_grouping', 'train',
     lambda f: [TINY, '--resume', str(f / 'grouped_train.pth'), '--work-dir', str(f / 'w4'),
                '--cfg-options', *_data(f)],
     1, r'its optimizer state has 2 parameter group\(s\) of \[5, 57\] parameters, but this '
        r"config's optimizer has 1 of \[62\] \(optim_wrapper\.paramwise_cfg"),
    ('train_resume_corrupt_checkpoint', 'train',
     lambda f: [TINY, '--resume', str(f / 'html.pth'), '--work-dir', str(f / 'w5'),
                '--cfg-options', *_data(f)],
     1, r"html\.pth' cannot be read: it is truncated or not a torch checkpoint"),
    ('train_resume_latest_checkpoint_gone', 'train',
     lambda f: [TINY, '--resume', '--work-dir', str(f / 'dangling'), '--cfg-options', *_data(f)],
     1, r"--resume: .*dangling/last_checkpoint names '.*gone/iter_4\.pth', which does not exist "
        r'\(moved or deleted\?\)\. Pass the checkpoint to continue from \(--resume CKPT\), or '
        r'delete last_checkpoint'),
    ('train_auto_scale_lr_without_base_batch_size', 'train',
     lambda f: [TINY, '--auto-scale-lr', '--cfg-options', *_data(f)],
     1, r'--auto-scale-lr needs `auto_scale_lr = dict\(base_batch_size=N\)` in the config; '
        r'.*tiny_resnet_custom\.py has none'),
    # ---- tools/test.py
    ('test_checkpoint_is_a_folder', 'test', lambda f: [TINY, str(f / 'adir')],
     2, r"checkpoint '.*adir' is a folder, not a file"),
    ('test_checkpoint_missing', 'test', lambda f: [TINY, str(f / 'gone.pth')],
     2, r"checkpoint '.*gone\.pth' does not exist"),
    ('test_out_folder_missing', 'test',
     lambda f: [TINY, str(f / 'student.pth'), '--out', str(f / 'no' / 'p.pkl')],
     2, r"the folder of --out '.*p\.pkl' does not exist \(.*no\); create it \(mkdir -p"),
    ('test_out_exists', 'test',
     lambda f: [TINY, str(f / 'student.pth'), '--out', str(f / 'student.pth')],
     2, r"--out '.*student\.pth' exists; pass --force to replace it"),
    ('test_out_is_the_checkpoint', 'test',
     lambda f: [TINY, str(f / 'preds.pkl'), '--out', str(f / 'preds.pkl'), '--force'],
     2, r"--out '.*preds\.pkl' is the checkpoint under test; give another name"),
    ('test_out_is_a_folder', 'test', lambda f: [TINY, str(f / 'student.pth'), '--out',
                                                 str(f / 'adir')],
     2, r"--out '.*adir' is a folder"),
    ('test_out_metrics_extension', 'test',
     lambda f: [TINY, str(f / 'student.pth'), '--out', str(f / 'm.txt'), '--out-item',
                'metrics'],
     2, r"--out '.*m\.txt': metrics are dumped as \.json/\.yaml/\.yml/\.pkl/\.pickle"),
    ('test_out_item_without_out', 'test',
     lambda f: [TINY, str(f / 'student.pth'), '--out-item', 'metrics'],
     2, r'--out-item metrics needs --out FILE'),
    ('test_mmdet_config', 'test', lambda f: [MMDET, str(f / 'student.pth')],
     1, r"is an MMDetection config .*tools/test\.py runs mmscalekd configs"),
    ('test_config_syntax_error', 'test', lambda f: [str(f / 'bad.py'), str(f / 'student.pth')],
     1, r"bad\.py:1:9: '\(' was never closed"),
    ('test_cfg_options_unknown_top_level_key', 'test',
     lambda f: [TINY, str(f / 'student.pth'), '--cfg-options', 'tset_dataloader.batch_size=1'],
     1, r"unknown top-level key 'tset_dataloader\.batch_size' \(did you mean 'test_dataloader'"),
    ('test_data_root_missing', 'test',
     lambda f: [TINY, str(f / 'student.pth'), '--cfg-options',
                f'test_dataloader.dataset.data_root={f / "student.pth"}'],
     1, r"test_dataloader\.dataset\.data_root '.*student\.pth' is a file, not a folder"),
    ('test_checkpoint_corrupt', 'test',
     lambda f: [TINY, str(f / 'html.pth'), '--work-dir', str(f / 'w6'), '--cfg-options',
                *_data(f, ('test', ))],
     1, r"html\.pth' cannot be read: it is truncated or not a torch checkpoint"),
    ('test_checkpoint_of_another_model', 'test',
     lambda f: [TINY, str(f / 'distill.pth'), '--work-dir', str(f / 'w7'), '--cfg-options',
                *_data(f, ('test', ))],
     1, r'distill\.pth does not match the model to evaluate: 121 weight\(s\) missing.*Is it '
        r'the checkpoint of this config\?'),
    # ---- extract_student.py
    ('extract_input_is_a_folder', 'extract', lambda f: [str(f / 'adir'), str(f / 'o.pth')],
     2, r"input checkpoint IN '.*adir' is a folder"),
    ('extract_input_empty', 'extract', lambda f: [str(f / 'empty.pth'), str(f / 'o.pth')],
     1, r"extract_student: error: Checkpoint '.*empty\.pth' cannot be read: it is truncated"),
    ('extract_input_html_page', 'extract', lambda f: [str(f / 'html.pth'), str(f / 'o.pth')],
     1, r"html\.pth' cannot be read.*starts with b'<h'"),
    ('extract_input_not_a_dict', 'extract', lambda f: [str(f / 'tensor.pth'), str(f / 'o.pth')],
     1, r'expected a checkpoint dict, got Tensor'),
    ('extract_input_plain_classifier', 'extract',
     lambda f: [str(f / 'student.pth'), str(f / 'o.pth')],
     1, r'has no "student\." weights, so it is not a distiller checkpoint.*use it as it is'),
    ('extract_output_is_a_folder', 'extract', lambda f: [str(f / 'distill.pth'), str(f / 'adir')],
     2, r"OUT '.*adir' is a folder; give the name of a file"),
    ('extract_output_folder_missing', 'extract',
     lambda f: [str(f / 'distill.pth'), str(f / 'no' / 'o.pth')],
     2, r"the folder of OUT '.*o\.pth' does not exist"),
    ('extract_output_exists', 'extract',
     lambda f: [str(f / 'distill.pth'), str(f / 'student.pth')],
     2, r"OUT '.*student\.pth' exists; pass --force to replace it \(the old file stays in place "
        r'until the new one is complete\)'),
    ('extract_output_is_the_input', 'extract',
     lambda f: [str(f / 'distill.pth'), str(f / 'distill.pth'), '--force'],
     2, r"OUT '.*distill\.pth' is the input file; give another name"),
    # ---- publish_model.py
    ('publish_input_is_a_folder', 'publish', lambda f: [str(f / 'adir'), str(f / 'm')],
     2, r"input checkpoint IN '.*adir' is a folder"),
    ('publish_input_empty', 'publish', lambda f: [str(f / 'empty.pth'), str(f / 'm')],
     1, r"publish_model: error: Checkpoint '.*empty\.pth' cannot be read"),
    ('publish_input_not_a_dict', 'publish', lambda f: [str(f / 'tensor.pth'), str(f / 'm')],
     1, r'tensor\.pth does not hold a checkpoint dict \(it holds a Tensor\)'),
    ('publish_output_is_a_folder', 'publish', lambda f: [str(f / 'student.pth'), str(f / 'adir')],
     2, r"OUT '.*adir' is a folder"),
    ('publish_output_ends_with_slash', 'publish',
     lambda f: [str(f / 'student.pth'), str(f / 'adir') + '/'],
     2, r"OUT '.*adir/' is a folder"),
    # ---- plot_curves.py (the output is checked before the logs are read)
    ('plot_output_exists', 'plot',
     lambda f: [str(f / 'adir'), '--out', str(f / 'student.pth')],
     2, r"--out '.*student\.pth' exists; pass --force"),
    ('plot_output_format_unknown', 'plot', lambda f: [str(f / 'adir'), '--out', str(f / 'c.txt')],
     2, r"matplotlib cannot write \.txt; use one of .*\.png"),
    ('plot_output_folder_missing', 'plot',
     lambda f: [str(f / 'adir'), '--out', str(f / 'no' / 'c.png')],
     2, r"the folder of --out '.*c\.png' does not exist"),
]


@pytest.mark.parametrize('case', CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_tool_refuses_bad_input(case, files: Path, capsys) -> None:
    _, tool, argv, status, words = case
    with pytest.raises(SystemExit) as exc:
        _tool(tool).main(argv(files))
    code = exc.value.code
    message = capsys.readouterr().err if isinstance(code, int) else code
    assert (code if isinstance(code, int) else 1) == status, message
    assert re.search(words, message, re.S), message
    # Nothing was trained or written: no checkpoint, no output next to the inputs.
    assert not list(files.glob('w*/*.pth')) and not list(files.glob('w*/last_checkpoint'))
    assert not (files / 'o.pth').exists() and not list(files.glob('m-*.pth'))
    assert not list(files.glob('.*.tmp-*'))


def test_tool_table_covers_every_tool() -> None:
    assert len({c[0] for c in CLI_CASES}) == len(CLI_CASES) >= 45
    assert {c[1] for c in CLI_CASES} == set(TOOLS)


# ----------------------------------------------------------------- library checks
def test_known_cfg_options_keys_pass() -> None:
    """No false alarm: the config's own keys and the Runner's are accepted."""
    from mmscalekd.utils.tool_checks import check_cfg_options, known_top_level_keys
    cfg = Config.fromfile(TINY)
    options = {'train_cfg.max_iters': 6, 'load_from': 'x.pth', 'resume': True,
               'work_dir': 'w', 'model_wrapper_cfg.find_unused_parameters': True,
               'env_cfg.cudnn_benchmark': True, 'randomness.seed': 1, 'data_root': 'd',
               'param_scheduler.0.milestones': [1]}
    check_cfg_options(options, cfg)
    assert {'experiment_name', 'visualizer', 'default_hooks'} <= set(known_top_level_keys(cfg))


def _pretrained_case(name: str) -> Callable[[Path], None]:
    from mmscalekd.engine.hooks.pretrained_check_hook import check_pretrained_file
    return lambda f: check_pretrained_file(str(f / name), 'backbone.', 'model.backbone')


# (id, callable(files) that must raise, exception type, regex on the message)
LIBRARY_CASES = [
    ('downstream_distiller_checkpoint_not_extracted', 'distill.pth', ValueError,
     r"model\.backbone\.init_cfg: '.*distill\.pth' is a distiller checkpoint \(its weights are "
     r'student\.\* 1, teacher\.\* 1; the student\'s are named student\.backbone\.\*\).*Extract '
     r'the student backbone first: `python tools/model_converters/extract_student\.py .*'
     r'distill\.pth student_backbone\.pth --backbone-only`'),
    ('downstream_checkpoint_missing', 'student_backbone.pth', FileNotFoundError,
     r"checkpoint '.*student_backbone\.pth' does not exist\. Make it from your distillation "
     r'checkpoint with `python tools/model_converters/extract_student\.py .*--backbone-only'),
    ('downstream_checkpoint_of_another_layout', 'timm_like.pth', ValueError,
     r"has no weights named backbone\.\* \(it has stem\.\* 1\).*set model\.backbone\.init_cfg\."
     r'prefix'),
]


@pytest.mark.parametrize('case', LIBRARY_CASES, ids=[c[0] for c in LIBRARY_CASES])
def test_library_check_refuses_bad_input(case, files: Path) -> None:
    _, name, error, words = case
    with pytest.raises(error) as exc:
        _pretrained_case(name)(files)
    assert re.search(words, str(exc.value), re.S), str(exc.value)


def test_pretrained_check_hook_runs_before_weights_load(files: Path) -> None:
    """The hook finds prefixed Pretrained init_cfgs in a model and checks them (train only)."""
    from mmengine.model import BaseModule
    from mmengine.runner import BaseLoop

    from mmscalekd.engine.hooks.pretrained_check_hook import PretrainedCheckHook

    class Loop(BaseLoop):
        def __init__(self) -> None:  # no dataloader needed here
            pass

        def run(self) -> None:
            pass

    class Detector(BaseModule):
        def __init__(self, checkpoint: str) -> None:
            super().__init__()
            self.backbone = BaseModule(init_cfg=dict(type='Pretrained', checkpoint=checkpoint,
                                                     prefix='backbone.'))

    hook = PretrainedCheckHook()
    bad = SimpleNamespace(model=Detector(str(files / 'distill.pth')), _train_loop=Loop())
    with pytest.raises(ValueError, match=r'model\.backbone\.init_cfg: .*distiller checkpoint'):
        hook.before_run(bad)
    hook.before_run(SimpleNamespace(model=bad.model, _train_loop=None))  # test run: no check
    good = files / 'good_backbone.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}}, good)
    hook.before_run(SimpleNamespace(model=Detector(str(good)), _train_loop=Loop()))
    url = SimpleNamespace(model=Detector('https://example.invalid/x.pth'), _train_loop=Loop())
    hook.before_run(url)  # remote files are left to the loader (nothing is downloaded here)


DOWNSTREAM = sorted(str(p) for p in (ROOT / 'configs/downstream').glob('*/*.py')
                    if 'scalekd' in p.name)


@pytest.mark.parametrize('path', DOWNSTREAM, ids=[Path(p).stem for p in DOWNSTREAM])
def test_downstream_configs_check_their_student_checkpoint(path: str) -> None:
    """Every ScaleKD downstream config builds the hook in its own (mmdet / mmseg) scope."""
    from mmengine.registry import HOOKS, DefaultScope

    from mmscalekd.engine.hooks.pretrained_check_hook import PretrainedCheckHook
    cfg = Config.fromfile(path)
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'  # mmpretrain checks this name
    hooks = [h for h in cfg.custom_hooks if h.type == 'PretrainedCheckHook']
    assert len(hooks) == 1
    importlib.import_module(f'{cfg.default_scope}.registry')
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        assert isinstance(HOOKS.build(dict(hooks[0])), PretrainedCheckHook)


# ----------------------------------------------------------------- dist_*.sh
def _script(name: str, args: List[str], **env: str) -> subprocess.CompletedProcess:
    environ = dict(os.environ, **env)
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'NODE_RANK', 'NNODES'):
        environ.pop(key, None)
    return subprocess.run(['bash', str(ROOT / 'tools' / name), *args], env=environ,
                          capture_output=True, text=True, timeout=60)


def test_dist_scripts_refuse_busy_port_and_bad_numbers(files: Path) -> None:
    with socket.socket() as busy:
        busy.bind(('', 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _script('dist_train.sh', [TINY, '2'], PORT=str(port))
        assert proc.returncode == 1, proc.stderr
        assert f'port {port} is in use' in proc.stderr
        assert f'PORT={port + 1} bash ' in proc.stderr and 'dist_train.sh' in proc.stderr
        proc = _script('dist_test.sh', [TINY, str(files / 'student.pth'), '1'], PORT=str(port))
        assert proc.returncode == 1 and f'PORT={port + 1}' in proc.stderr
    proc = _script('dist_train.sh', [TINY, 'two'])
    assert proc.returncode == 2 and "GPUS must be the number of processes per node" in proc.stderr
    assert "got 'two'" in proc.stderr
    proc = _script('dist_test.sh', [TINY, 'c.pth', '1'], PORT='http')
    assert proc.returncode == 2 and "PORT must be a TCP port number (1-65535), got 'http'" \
        in proc.stderr


def test_resume_check_accepts_the_runs_own_checkpoint_with_or_without_teacher() -> None:
    """No false alarm: the same model and optimizer pass, teacher weights saved or not."""
    from mmscalekd.utils.resume_check import ResumeCheckpointError, check_resume_checkpoint

    class Distiller(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.student = torch.nn.Linear(4, 2)
            self.teacher = torch.nn.Linear(4, 2)
            self.connectors = torch.nn.Linear(2, 2)

    model = Distiller()
    trainable = [p for n, p in model.named_parameters() if not n.startswith('teacher.')]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    state = model.state_dict()
    full = {'state_dict': state, 'meta': {}, 'message_hub': {},
            'optimizer': optimizer.state_dict()}
    check_resume_checkpoint(full, 'full.pth', model, optimizer)
    no_teacher = dict(full, state_dict={k: v for k, v in state.items()
                                        if not k.startswith('teacher.')})
    check_resume_checkpoint(no_teacher, 'student_connectors.pth', model, optimizer)
    ddp = dict(full, state_dict={f'module.{k}': v for k, v in state.items()})
    check_resume_checkpoint(ddp, 'ddp.pth', model, optimizer)
    # ... and one connector less is refused, naming it.
    fewer = dict(no_teacher, state_dict={k: v for k, v in no_teacher['state_dict'].items()
                                         if k != 'connectors.bias'})
    with pytest.raises(ResumeCheckpointError, match=r'1 weight\(s\) of this model are not in '
                                                    r'it \(e\.g\. connectors\.bias\)'):
        check_resume_checkpoint(fewer, 'fewer.pth', model, optimizer)


# ----------------------------------------------------------------- benchmark_distill.py
def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        'benchmark_distill_tool', ROOT / 'tools/analysis_tools/benchmark_distill.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_benchmark_runs_on_a_one_channel_config(tmp_path: Path) -> None:
    """The grayscale demo distiller: inputs get the preprocessor's 1 channel, not 3."""
    tool = _benchmark()
    out = tmp_path / 'bench.json'
    config = str(ROOT / 'configs/demo/scalekd_resnet18-w8_fashion-mnist-2k.py')
    result = tool.main([config, '--batch-size', '2', '--iters', '1', '--warmup', '0',
                        '--out', str(out)])
    assert result['step']['median_s'] > 0
    assert out.is_file() and not list(tmp_path.glob('.*.tmp-*'))
    with pytest.raises(SystemExit, match=r"--out '.*bench\.json' exists; pass --force"):
        tool.main([config, '--out', str(out)])  # refused before anything runs


SHIPPED = sorted(str(p.relative_to(ROOT)) for folder in ('configs/scalekd', 'configs/kd',
                                                         'configs/ssld', 'configs/demo',
                                                         'tests/data/configs')
                 for p in (ROOT / folder).glob('*.py'))


@pytest.mark.parametrize('config', SHIPPED)
def test_shipped_configs_pass_the_tool_checks(config: str) -> None:
    """No false alarm: every shipped training config loads, is of the right kind for
    tools/train.py, and accepts overrides of each of its own top-level keys."""
    from mmscalekd.utils import tool_checks
    cfg = tool_checks.load_config(str(ROOT / config))
    if cfg.get('train_dataloader') is None or cfg.get('model') is None:
        pytest.skip('a fragment other configs inherit, not a training config')
    tool_checks.check_config_kind(cfg, config, _tool('train').TRAIN_NEEDS, 'tools/train.py')
    tool_checks.check_cfg_options({f'{key}.x': 1 for key in cfg.keys()}, cfg)
