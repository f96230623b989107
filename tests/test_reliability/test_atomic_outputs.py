"""Tool outputs are written atomically and never replace a file without ``--force``.

:mod:`mmscalekd.utils.atomic_io` and the tools that write through it
(``extract_student.py``, ``publish_model.py``, ``tools/test.py --out``, ``plot_curves.py``):
a write that fails half-way (an injected error) or is killed (SIGKILL of a subprocess in the
middle of ``torch.save``) leaves the previous file byte-identical and no partial file under
the final name; the temporary file of a killed write is removed by the next write of the
same output.
"""
import hashlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch
from mmengine.config import Config

from mmscalekd.registry import MODELS
from mmscalekd.utils import safe_torch_load
from mmscalekd.utils.atomic_io import (
    AtomicOutput,
    OutputExistsError,
    atomic_save,
    atomic_write_text,
    check_output,
    remove_stale_temporaries,
    temporary_path,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / 'tests/data/configs/tiny_resnet_custom.py'


def _tool(rel: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(rel).stem + '_atomic', ROOT / rel)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _temporaries(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if '.tmp-' in p.name)


def _failing_save(fraction: float = 0.5):
    """A ``torch.save`` that writes part of the real bytes, then raises (a full disk)."""
    real = torch.save

    def save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real(obj, buffer)
        data = buffer.getvalue()
        with open(f, 'wb') as fh:
            fh.write(data[:int(len(data) * fraction)])
        raise OSError(28, 'No space left on device')
    return save


# ----------------------------------------------------------------- the library
def test_check_output_refuses_existing_folder_and_missing_folder(tmp_path: Path) -> None:
    out = tmp_path / 'a.pth'
    assert check_output(str(out)) == str(out)
    out.write_bytes(b'old')
    with pytest.raises(OutputExistsError, match=r"a\.pth' exists; pass --force"):
        check_output(str(out))
    assert check_output(str(out), force=True) == str(out)
    with pytest.raises(OutputExistsError, match='pass --overwrite'):
        check_output(str(out), flag='--overwrite')
    with pytest.raises(IsADirectoryError, match='is a folder'):
        check_output(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r'does not exist .*mkdir -p'):
        check_output(str(tmp_path / 'no' / 'a.pth'))


def test_temporary_path_is_hidden_next_to_the_output_and_keeps_the_extension(
        tmp_path: Path) -> None:
    tmp = Path(temporary_path(str(tmp_path / 'preds.pkl')))
    assert tmp.parent == tmp_path and tmp.name.startswith('.preds.pkl.tmp-')
    assert tmp.name.endswith(f'-{os.getpid()}.pkl')


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path,
                                                                 monkeypatch) -> None:
    out = tmp_path / 'student.pth'
    atomic_save({'w': torch.ones(3)}, str(out))
    before = _digest(out)
    monkeypatch.setattr(torch, 'save', _failing_save())
    with pytest.raises(OSError, match='No space left'):
        atomic_save({'w': torch.zeros(1000)}, str(out), force=True)
    assert _digest(out) == before and _temporaries(tmp_path) == []
    monkeypatch.undo()
    atomic_save({'w': torch.zeros(2)}, str(out), force=True)
    assert safe_torch_load(out)['w'].tolist() == [0.0, 0.0]


def test_output_that_appears_during_the_write_is_not_clobbered(tmp_path: Path) -> None:
    out = tmp_path / 'table.json'
    with pytest.raises(OutputExistsError, match='appeared while it was being written'):
        with AtomicOutput(str(out)) as target:
            Path(target.tmp).write_text('{"new": 1}')
            out.write_text('{"other": 2}')  # another process got there first
    assert json.loads(out.read_text()) == {'other': 2} and _temporaries(tmp_path) == []
    atomic_write_text(str(out), '{"new": 1}', force=True)
    assert json.loads(out.read_text()) == {'new': 1}


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    out = tmp_path / 'student.pth'
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = Path(temporary_path(str(out), pid=dead.pid))
    alive = Path(temporary_path(str(out), pid=os.getppid()))
    other = tmp_path / f'.other.pth.tmp-x-{dead.pid}.pth'
    for path in (stale, alive, other):
        path.write_bytes(b'partial')
    assert remove_stale_temporaries(str(out)) == [str(stale)]
    assert not stale.exists() and alive.exists() and other.exists()


# ----------------------------------------------------------------- extract_student.py
def _distiller_checkpoint(path: Path) -> dict:
    student = MODELS.build(Config.fromfile(str(TINY)).model)
    state = {f'student.{k}': v for k, v in student.state_dict().items()}
    state['teacher.w'] = torch.ones(2)
    checkpoint = {'state_dict': state, 'meta': {'iter': 3}}
    torch.save(checkpoint, path)
    return checkpoint


_KILLED_WRITER = r'''
import io, runpy, sys, time
from pathlib import Path
import torch
real, marker = torch.save, Path(sys.argv[1])
def slow_save(obj, f, *args, **kwargs):  # half the bytes on disk, then hang until killed
    buffer = io.BytesIO()
    real(obj, buffer)
    data = buffer.getvalue()
    with open(f, 'wb') as fh:
        fh.write(data[:len(data) // 2])
        fh.flush()
    marker.write_text('writing')
    time.sleep(300)
torch.save = slow_save
sys.argv = [sys.argv[2]] + sys.argv[3:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def test_extract_student_killed_mid_write_keeps_the_good_output(tmp_path: Path,
                                                                capsys) -> None:
    tool = _tool('tools/model_converters/extract_student.py')
    src, out = tmp_path / 'distill.pth', tmp_path / 'student.pth'
    _distiller_checkpoint(src)
    tool.main([str(src), str(out)])
    good = _digest(out)

    # A second extraction with --force, killed with SIGKILL half-way through torch.save.
    marker = tmp_path / 'writing'
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable, '-c', _KILLED_WRITER, str(marker),
                             str(ROOT / 'tools/model_converters/extract_student.py'),
                             str(src), str(out), '--force'], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1].decode()[-3000:]
            assert time.monotonic() < deadline, 'the writer never started'
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert _digest(out) == good  # the good file is untouched, not 0 bytes, not half-written
    assert len(safe_torch_load(out)['state_dict']) > 0
    leftovers = _temporaries(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith('.student.pth.tmp-')

    # The next run removes the killed run's temporary file and says so.
    capsys.readouterr()
    tool.main([str(src), str(out), '--force'])
    printed = capsys.readouterr().out
    assert f'removed {tmp_path / leftovers[0]} (left by a killed earlier run)' in printed
    assert _temporaries(tmp_path) == [] and len(safe_torch_load(out)['state_dict']) > 0


def test_extract_student_failed_write_and_refused_overwrite(tmp_path: Path,
                                                            monkeypatch, capsys) -> None:
    tool = _tool('tools/model_converters/extract_student.py')
    src, out = tmp_path / 'distill.pth', tmp_path / 'student.pth'
    _distiller_checkpoint(src)
    out.write_bytes(b'an earlier result')
    with pytest.raises(SystemExit) as exc:
        tool.main([str(src), str(out)])
    assert exc.value.code == 2 and 'exists; pass --force' in capsys.readouterr().err
    assert out.read_bytes() == b'an earlier result'
    monkeypatch.setattr(torch, 'save', _failing_save())
    with pytest.raises(SystemExit) as exc:
        tool.main([str(src), str(out), '--force'])
    assert exc.value.code == (f"extract_student: error: cannot write '{out}' ([Errno 28] No "
                              'space left on device); it is unchanged')
    assert out.read_bytes() == b'an earlier result' and _temporaries(tmp_path) == []


# ----------------------------------------------------------------- publish_model.py
def test_publish_model_keeps_identical_file_and_never_leaves_a_partial_one(
        tmp_path: Path, monkeypatch, capsys) -> None:
    tool = _tool('tools/model_converters/publish_model.py')
    src = tmp_path / 'in.pth'
    _distiller_checkpoint(src)
    final = Path(tool.main([str(src), str(tmp_path / 'model.pth')]))
    stat = final.stat()
    capsys.readouterr()
    assert tool.main([str(src), str(tmp_path / 'model')]) == str(final)  # same bytes, same name
    assert f'unchanged: {final} already holds exactly these bytes' in capsys.readouterr().out
    assert final.stat().st_mtime_ns == stat.st_mtime_ns  # not rewritten
    # Same 8-digit name, other bytes (a prefix collision): refused without --force.
    final.write_bytes(b'other bytes')
    with pytest.raises(SystemExit) as exc:
        tool.main([str(src), str(tmp_path / 'model.pth')])
    assert exc.value.code == 2 and 'exists with other bytes' in capsys.readouterr().err
    assert final.read_bytes() == b'other bytes'
    tool.main([str(src), str(tmp_path / 'model.pth'), '--force'])
    assert hashlib.sha256(final.read_bytes()).hexdigest()[:8] in final.name
    monkeypatch.setattr(torch, 'save', _failing_save())
    with pytest.raises(SystemExit, match='No space left on device; nothing was published'):
        tool.main([str(src), str(tmp_path / 'fresh.pth')])
    assert not list(tmp_path.glob('fresh*')) and _temporaries(tmp_path) == []


# ----------------------------------------------------------------- tools/test.py --out
def test_test_tool_out_is_atomic_and_needs_force(tmp_path: Path, monkeypatch, capsys) -> None:
    import cv2
    import numpy as np
    from mmengine.runner import Runner
    for cls in ('a', 'b'):
        (tmp_path / 'imgs' / cls).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / 'imgs' / cls / '0.png'), np.full((32, 32, 3), 80, np.uint8))
    ckpt = tmp_path / 'student.pth'
    torch.save({'state_dict': MODELS.build(Config.fromfile(str(TINY)).model).state_dict()}, ckpt)
    tool = _tool('tools/test.py')
    out = tmp_path / 'metrics.json'
    argv = [str(TINY), str(ckpt), '--work-dir', str(tmp_path / 'w'), '--out', str(out),
            '--out-item', 'metrics', '--cfg-options',
            f'test_dataloader.dataset.data_root={tmp_path / "imgs"}']
    metrics = tool.main(argv)
    assert json.loads(out.read_text()) == pytest.approx(metrics)
    with pytest.raises(SystemExit) as exc:
        tool.main(argv)
    assert exc.value.code == 2 and 'metrics.json\' exists; pass --force' in \
        capsys.readouterr().err
    before = out.read_bytes()

    def broken_test(self):
        raise RuntimeError('killed during evaluation')
    monkeypatch.setattr(Runner, 'test', broken_test)
    with pytest.raises(RuntimeError, match='killed during evaluation'):
        tool.main(argv + ['--force'])
    assert out.read_bytes() == before and _temporaries(tmp_path) == []
    monkeypatch.undo()
    preds = tmp_path / 'preds.pkl'
    tool.main(argv[:4] + ['--out', str(preds)] + argv[-2:])
    assert preds.stat().st_size > 0 and _temporaries(tmp_path) == []


# ----------------------------------------------------------------- plot_curves.py
def test_plot_curves_replaces_only_with_force(tmp_path: Path, monkeypatch, capsys) -> None:
    tool = _tool('tools/analysis_tools/plot_curves.py')
    vis = tmp_path / 'run' / '20240101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    (vis / 'scalars.json').write_text('{"loss": 2.0, "step": 1}\n{"loss": 1.0, "step": 2}\n')
    out = tmp_path / 'curves.png'
    tool.main([str(tmp_path / 'run'), '--out', str(out)])
    first = out.read_bytes()
    assert first[:8] == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(SystemExit) as exc:
        tool.main([str(tmp_path / 'run'), '--out', str(out)])
    assert exc.value.code == 2 and 'pass --force' in capsys.readouterr().err
    import matplotlib.figure

    def broken_savefig(self, fname, **kwargs):
        Path(fname).write_bytes(b'\x89PNG half')
        raise RuntimeError('renderer crashed')
    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', broken_savefig)
    with pytest.raises(RuntimeError, match='renderer crashed'):
        tool.main([str(tmp_path / 'run'), '--out', str(out), '--force'])
    assert out.read_bytes() == first and _temporaries(tmp_path) == []
    monkeypatch.undo()
    pdf = tmp_path / 'curves.pdf'
    tool.main([str(tmp_path / 'run'), '--out', str(pdf)])
    assert pdf.read_bytes()[:5] == b'%PDF-'  # the format follows the extension, as before
