"""Tests of the command-line tools: train / test / dist launch / converters / curves.

Training runs go through ``subprocess`` exactly as a user starts them, on a tiny
ResNet and 16 random 32x32 images, so they also check what the tools set up in fresh
processes (weights-only resume through register_all_modules, gloo DDP without CUDA).
"""
import importlib.util
import json
import os
import os.path as osp
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, List

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmscalekd.registry import MODELS
from mmscalekd.utils import safe_torch_load
from mmscalekd.utils.launch import LaunchError, check_launch_env, init_cpu_distributed

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TINY_CFG = ROOT / 'tests/data/configs/tiny_resnet_custom.py'


def _load_tool(rel_path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(rel_path).stem + '_tool', ROOT / rel_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT), **extra)
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(key, None)
    return env


def _run(cmd: List[str], timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(**env), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f'{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc


def _data_options(data_root: Path) -> List[str]:
    return [f'{split}_dataloader.dataset.data_root={data_root}'
            for split in ('train', 'val', 'test')]


def _scalars(work_dir: Path) -> List[List[dict]]:
    """Records of each run in ``work_dir``, oldest run first."""
    runs = []
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        runs.append([json.loads(line) for line in path.read_text().splitlines() if line])
    return runs


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory) -> Path:
    """16 random 32x32 images in two class folders (a CustomDataset layout)."""
    import cv2
    root = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(0)
    for cls in ('cat', 'dog'):
        (root / cls).mkdir()
        for i in range(8):
            cv2.imwrite(str(root / cls / f'{i}.png'),
                        rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return root


def _train_and_resume(work_dir: Path, image_folder: Path) -> None:
    """Train 4 iterations, then resume to 6 in a fresh process (weights-only resume)."""
    base = [PY, 'tools/train.py', str(TINY_CFG), '--work-dir', str(work_dir)]
    _run(base + ['--cfg-options', *_data_options(image_folder)])
    assert (work_dir / 'iter_2.pth').is_file() and (work_dir / 'iter_4.pth').is_file()
    assert not (work_dir / 'iter_6.pth').exists()
    _run(base + ['--resume', '--cfg-options', 'train_cfg.max_iters=6',
                 *_data_options(image_folder)])


# ----------------------------------------------------------------- (a) train + resume, (f) test
@pytest.mark.slow
def test_train_resume_then_test_tool(tmp_path: Path, image_folder: Path) -> None:
    trained = tmp_path / 'train'
    _train_and_resume(trained, image_folder)
    first, second = _scalars(trained)
    assert [r['step'] for r in first if 'loss' in r] == [1, 2, 3, 4]
    # The resumed run starts after iteration 4 instead of from scratch.
    assert [r['step'] for r in second if 'loss' in r] == [5, 6]
    # The step scheduler (milestone 3, gamma 0.1) state came back with the checkpoint.
    assert [r['lr'] for r in second if 'lr' in r] == pytest.approx([1e-3, 1e-3])
    ckpt = safe_torch_load(trained / 'iter_6.pth')
    assert ckpt['meta']['iter'] == 6
    assert {'state_dict', 'optimizer', 'message_hub', 'param_schedulers'} <= set(ckpt)

    # (f) tools/test.py on the plain checkpoint (a subprocess) and on a distiller-shaped
    # checkpoint + config around the same student (in-process, to save a start-up). Only
    # the student is built: the teacher type below does not exist and its URL is never read.
    distiller_state = {f'student.{k}': v for k, v in ckpt['state_dict'].items()}
    distiller_state['teacher.backbone.weight'] = torch.zeros(3)
    distiller_state['connectors.s3_spatial.query'] = torch.zeros(4, 8)
    torch.save({'state_dict': distiller_state, 'meta': ckpt['meta']}, tmp_path / 'distill.pth')
    cfg = Config.fromfile(str(TINY_CFG))
    cfg.model = dict(type='ScaleKDDistiller', student=cfg.model,
                     teacher=dict(type='NotBuiltTeacher',
                                  checkpoint='https://invalid.example/teacher.pth'),
                     data_preprocessor=cfg.data_preprocessor)
    cfg.dump(str(tmp_path / 'distiller_cfg.py'))

    opts = ['--cfg-options', f'test_dataloader.dataset.data_root={image_folder}']
    _run([PY, 'tools/test.py', str(TINY_CFG), str(trained / 'iter_6.pth'),
          '--work-dir', str(tmp_path / 'a'), '--out', str(tmp_path / 'student.pkl'), *opts])
    metrics = _load_tool('tools/test.py').main(
        [str(tmp_path / 'distiller_cfg.py'), str(tmp_path / 'distill.pth'),
         '--work-dir', str(tmp_path / 'b'), '--out', str(tmp_path / 'distill.pkl'), *opts])
    assert set(metrics) == {'accuracy/top1'}
    with open(tmp_path / 'student.pkl', 'rb') as f:
        plain = pickle.load(f)
    with open(tmp_path / 'distill.pkl', 'rb') as f:
        distilled = pickle.load(f)
    assert len(plain) == len(distilled) == 16
    for p, d in zip(plain, distilled):
        torch.testing.assert_close(p['pred_score'], d['pred_score'])
    # The scores are the trained model's, not a fresh init's: recompute one by hand.
    model = MODELS.build(Config.fromfile(str(TINY_CFG)).model)
    model.load_state_dict(ckpt['state_dict'])
    model.eval()
    import cv2
    img = cv2.imread(plain[0]['img_path'])
    x = (torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1).float() - 127.5) / 64.0
    with torch.no_grad():
        score = model(x[None], mode='tensor').softmax(-1)[0]
    torch.testing.assert_close(score, plain[0]['pred_score'], atol=1e-5, rtol=1e-5)
    correct = sum(int(p['pred_label']) == int(p['gt_label']) for p in plain)
    assert metrics['accuracy/top1'] == pytest.approx(100 * correct / 16)


def test_test_tool_refuses_checkpoint_of_another_model(tmp_path: Path) -> None:
    test_tool = _load_tool('tools/test.py')
    model = MODELS.build(Config.fromfile(str(TINY_CFG)).model)
    torch.save({'state_dict': {'student.backbone.conv1.weight': torch.zeros(1)}},
               tmp_path / 'wrong.pth')
    with pytest.raises(ValueError, match=r'weight\(s\) missing .* 1 of another shape'):
        test_tool.load_student(model, str(tmp_path / 'wrong.pth'))
    # A distiller checkpoint loads into the student: prefix stripped, teacher ignored.
    state = {f'student.{k}': v + 1 for k, v in model.state_dict().items()}
    torch.save({'state_dict': dict(state, **{'teacher.w': torch.zeros(1)})},
               tmp_path / 'ok.pth')
    test_tool.load_student(model, str(tmp_path / 'ok.pth'))
    torch.testing.assert_close(model.head.fc.bias, state['student.head.fc.bias'])


# ----------------------------------------------------------------- (b) dist_train.sh
@pytest.mark.slow
def test_dist_train_two_processes_gloo_and_resume(tmp_path: Path, image_folder: Path) -> None:
    work_dir = tmp_path / 'dist'
    script = ['bash', 'tools/dist_train.sh', str(TINY_CFG), '2', '--work-dir', str(work_dir)]
    opts = ['--cfg-options', 'train_cfg.max_iters=2', *_data_options(image_folder)]
    proc = _run(script + opts, PORT=str(_free_port()))
    assert 'Distributed training: True' in proc.stdout + proc.stderr
    assert 'GPU number: 2' in proc.stdout + proc.stderr  # MMEngine's name for world size
    assert (work_dir / 'iter_2.pth').is_file()
    _run(script + ['--resume', '--cfg-options', 'train_cfg.max_iters=4',
                   'default_hooks.checkpoint.interval=4', *_data_options(image_folder)],
         PORT=str(_free_port()))
    assert safe_torch_load(work_dir / 'iter_4.pth')['meta']['iter'] == 4
    first, second = _scalars(work_dir)
    assert [r['step'] for r in second if 'loss' in r] == [3, 4]


# ----------------------------------------------------------------- launch checks
def test_train_tool_rejects_bad_invocations(tmp_path: Path, capsys, monkeypatch) -> None:
    train_tool = _load_tool('tools/train.py')
    with pytest.raises(SystemExit) as exc:
        train_tool.main([str(tmp_path / 'missing.py')])
    assert exc.value.code == 2
    assert 'missing.py' in capsys.readouterr().err

    with pytest.raises(SystemExit) as exc:
        train_tool.main([str(TINY_CFG), '--resume', str(tmp_path / 'nope.pth')])
    assert 'nope.pth' in capsys.readouterr().err

    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(SystemExit) as exc:
        train_tool.main([str(TINY_CFG), '--launcher', 'pytorch'])
    assert 'RANK' in str(exc.value.code) and 'dist_train.sh' in str(exc.value.code)


def test_check_launch_env() -> None:
    torchrun = dict(RANK='0', WORLD_SIZE='4', LOCAL_RANK='0', MASTER_ADDR='h', MASTER_PORT='1',
                    LOCAL_WORLD_SIZE='4')
    check_launch_env('pytorch', torchrun, num_gpus=4)
    check_launch_env('pytorch', torchrun, num_gpus=0)  # CPU: gloo, any number of processes
    with pytest.raises(LaunchError, match='4 processes .* only 2 CUDA GPU'):
        check_launch_env('pytorch', torchrun, num_gpus=2)
    with pytest.raises(LaunchError, match='Local rank 3 has no GPU'):
        check_launch_env('pytorch', dict(torchrun, LOCAL_RANK='3', LOCAL_WORLD_SIZE=''),
                         num_gpus=2)
    with pytest.raises(LaunchError, match='MASTER_ADDR, MASTER_PORT are not set'):
        check_launch_env('pytorch', dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0'), num_gpus=0)
    with pytest.raises(LaunchError, match='WORLD_SIZE=2'):
        check_launch_env('none', dict(WORLD_SIZE='2'), num_gpus=0)
    slurm = dict(SLURM_PROCID='0', SLURM_NTASKS='16', SLURM_NODELIST='n[1-2]',
                 SLURM_NTASKS_PER_NODE='8(x2)', SLURM_LOCALID='0')
    check_launch_env('slurm', slurm, num_gpus=8)
    with pytest.raises(LaunchError, match='8 processes'):
        check_launch_env('slurm', slurm, num_gpus=4)
    with pytest.raises(ValueError, match="'torchrun'"):
        check_launch_env('torchrun', {}, num_gpus=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path only')
def test_init_cpu_distributed_slurm_single_task() -> None:
    import torch.distributed as dist
    env = dict(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_NODELIST='localhost',
               SLURM_LOCALID='0', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(_free_port()))
    assert init_cpu_distributed('none', env=dict(env)) is False  # one process: no group
    try:
        assert init_cpu_distributed('slurm', backend='nccl', env=env) is True
        assert dist.get_backend() == 'gloo' and dist.get_world_size() == 1
        assert (env['RANK'], env['WORLD_SIZE'], env['LOCAL_RANK']) == ('0', '1', '0')
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# ----------------------------------------------------------------- (c) extract_student
def _distiller_checkpoint() -> dict:
    student = MODELS.build(Config.fromfile(str(TINY_CFG)).model)
    state = {f'student.{k}': v for k, v in student.state_dict().items()}
    state.update({
        'teacher.backbone.layers.0.weight': torch.ones(2),
        'teacher.head.fc.weight': torch.ones(2),
        'connectors.s3_spatial.query': torch.ones(4, 8),
        'connectors.s3_freq.query': torch.ones(4, 8),
    })
    return {'meta': {'iter': 6, 'cfg': 'distiller config text', 'dataset_meta': {'classes': 'ab'}},
            'state_dict': state, 'optimizer': {'state': {}, 'param_groups': []},
            'message_hub': {'log_scalars': {}}, 'param_schedulers': []}


def test_extract_student_keeps_student_only(tmp_path: Path, capsys) -> None:
    from mmengine.runner import load_checkpoint
    tool = _load_tool('tools/model_converters/extract_student.py')
    src = _distiller_checkpoint()
    torch.save(src, tmp_path / 'distill.pth')
    tool.main([str(tmp_path / 'distill.pth'), str(tmp_path / 'student.pth')])
    printed = capsys.readouterr().out
    out = safe_torch_load(tmp_path / 'student.pth')
    assert set(out) == {'state_dict', 'meta'}
    n_student = sum(k.startswith('student.') for k in src['state_dict'])
    assert len(out['state_dict']) == n_student
    assert not any(k.startswith(('student.', 'teacher.', 'connectors.')) for k in out['state_dict'])
    assert out['meta']['iter'] == 6 and 'cfg' not in out['meta']
    assert 'teacher 2' in printed and 'connectors 2' in printed
    assert 'message_hub, optimizer, param_schedulers' in printed
    # It loads strictly into a plain mmpretrain classifier, through the safe loader.
    fresh = MODELS.build(Config.fromfile(str(TINY_CFG)).model)
    load_checkpoint(fresh, str(tmp_path / 'student.pth'), strict=True)
    torch.testing.assert_close(fresh.head.fc.weight, src['state_dict']['student.head.fc.weight'])


def test_extract_student_backbone_only_loads_with_prefix(tmp_path: Path, capsys) -> None:
    from mmengine.runner.checkpoint import _load_checkpoint_with_prefix
    tool = _load_tool('tools/model_converters/extract_student.py')
    src = _distiller_checkpoint()
    torch.save(src, tmp_path / 'distill.pth')
    tool.main([str(tmp_path / 'distill.pth'), str(tmp_path / 'bb.pth'), '--backbone-only'])
    assert 'student.head 2' in capsys.readouterr().out  # head weight + bias dropped
    out = safe_torch_load(tmp_path / 'bb.pth')
    assert out['state_dict'] and all(k.startswith('backbone.') for k in out['state_dict'])
    # What mmdet/mmseg's init_cfg=dict(type='Pretrained', prefix='backbone.') does:
    weights = _load_checkpoint_with_prefix('backbone.', str(tmp_path / 'bb.pth'))
    backbone = MODELS.build(Config.fromfile(str(TINY_CFG)).model.backbone)
    assert set(weights) == set(backbone.state_dict())
    backbone.load_state_dict(weights, strict=True)


def test_extract_student_refuses_checkpoint_without_student(tmp_path: Path) -> None:
    tool = _load_tool('tools/model_converters/extract_student.py')
    torch.save({'state_dict': {'backbone.conv1.weight': torch.ones(1),
                               'head.fc.weight': torch.ones(1)}}, tmp_path / 'plain.pth')
    with pytest.raises(SystemExit) as exc:
        tool.main([str(tmp_path / 'plain.pth'), str(tmp_path / 'out.pth')])
    message = str(exc.value.code)
    assert 'no "student." weights' in message and 'backbone 1, head 1' in message
    assert not (tmp_path / 'out.pth').exists()


# ----------------------------------------------------------------- (d) publish_model
def test_publish_model_strips_state_and_names_by_sha(tmp_path: Path, capsys) -> None:
    import hashlib
    tool = _load_tool('tools/model_converters/publish_model.py')
    src = _distiller_checkpoint()
    src['ema_state_dict'] = {'x': torch.ones(1)}
    torch.save(src, tmp_path / 'in.pth')
    final = tool.main([str(tmp_path / 'in.pth'), str(tmp_path / 'model.pth')])
    assert capsys.readouterr().out.strip().endswith(final)
    name = osp.basename(final)
    assert len(name) == len('model-.pth') + 8
    sha = hashlib.sha256(Path(final).read_bytes()).hexdigest()
    assert name == f'model-{sha[:8]}.pth'
    out = safe_torch_load(final)
    assert set(out) == {'state_dict', 'meta'}
    assert list(tmp_path.glob('*.tmp-*')) == []
    kept = tool.main([str(tmp_path / 'in.pth'), str(tmp_path / 'ema'), '--keep-ema'])
    assert 'ema_state_dict' in safe_torch_load(kept)


# ----------------------------------------------------------------- (e) plot_curves
def test_plot_curves_writes_png_across_resumed_runs(tmp_path: Path) -> None:
    tool = _load_tool('tools/analysis_tools/plot_curves.py')
    runs = {'20240101_000000': [{'loss': 2.0, 'lr': 0.1, 'iter': 1, 'step': 1},
                                {'loss': 1.5, 'lr': 0.1, 'iter': 2, 'step': 2},
                                {'accuracy/top1': 40.0, 'step': 2}],
            '20240102_000000': [{'loss': 1.4, 'lr': 0.1, 'iter': 2, 'step': 2},
                                {'loss': 1.0, 'lr': 0.01, 'iter': 3, 'step': 3}]}
    for stamp, records in runs.items():
        vis = tmp_path / stamp / 'vis_data'
        vis.mkdir(parents=True)
        (vis / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in records))
    logs = tool.find_logs(str(tmp_path))
    assert [Path(p).parts[-3] for p in logs] == list(runs)
    curves = tool.read_curves(logs, ['loss', 'accuracy/top1'])
    # The resumed run's value wins at the overlapping step 2.
    assert curves['loss'] == [(1.0, 2.0), (2.0, 1.4), (3.0, 1.0)]
    assert curves['accuracy/top1'] == [(2.0, 40.0)]

    out = tmp_path / 'curves.png'
    tool.main([str(tmp_path), '--keys', 'loss', 'accuracy/top1', '--out', str(out)])
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path), '--keys', 'no_such_key', '--out', str(tmp_path / 'x.png')])


# ----------------------------------------------------------------- base configs
@pytest.mark.parametrize('name', ['datasets/imagenet_bs32_traditional.py',
                                  'datasets/imagenet_bs64_advanced.py',
                                  'datasets/imagenet_bs64_advanced_resnet.py',
                                  'datasets/imagenet_bs64_advanced_mobilenet.py',
                                  'datasets/imagenet_bs48_advanced_mixer.py'])
def test_base_dataset_pipelines_build(name: str) -> None:
    from mmscalekd.registry import TRANSFORMS
    cfg = Config.fromfile(str(ROOT / 'configs/_base_' / name))
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        for step in pipeline:
            TRANSFORMS.build(step)
    assert cfg.test_pipeline[1].scale == 256 and cfg.test_pipeline[2].crop_size == 224
    assert cfg.train_dataloader.batch_size == int(name.split('_bs')[1].split('_')[0].split('.')[0])


@pytest.mark.parametrize('name', ['traditional_sgd_step_100e', 'traditional_sgd_cos_100e',
                                  'advanced_lamb_300e', 'advanced_adamw_300e',
                                  'advanced_adamw_mixer_300e'])
def test_base_schedules_build(name: str) -> None:
    from mmengine.optim import build_optim_wrapper

    from mmscalekd.registry import PARAM_SCHEDULERS
    cfg = Config.fromfile(str(ROOT / 'configs/_base_/schedules' / f'{name}.py'))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    schedulers = cfg.param_scheduler
    schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
    for sched in schedulers:
        sched = dict(sched)
        if sched.pop('convert_to_iter_based', False):
            sched.update(by_epoch=False)  # the Runner converts with the epoch length
        PARAM_SCHEDULERS.build(dict(sched, optimizer=wrapper))
    assert cfg.train_cfg.max_epochs == (100 if '100e' in name else 300)
    decays = sorted(g['weight_decay'] for g in wrapper.optimizer.param_groups)
    if name == 'advanced_adamw_300e':  # no decay on BN weights and biases (docs/recipe_audit.md)
        assert decays == [0.0, 0.0, 0.0, 0.05]
    if name == 'advanced_adamw_mixer_300e':  # the official Mixer schedule decays norms and biases
        assert decays == [0.067] * 4
