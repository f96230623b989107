"""A checkpoint carrying a pickle payload is refused on every loading path; its code never runs."""
import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.runner.checkpoint import CheckpointLoader, load_checkpoint

from mmscalekd.registry import MODELS
from mmscalekd.utils import UnsafeCheckpointError
from tests import _builders as B

ROOT = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this calls ``Path.touch(marker)``: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker, ))


@pytest.fixture
def evil(tmp_path: Path):
    marker = tmp_path / 'PWNED'
    teacher = MODELS.build(B.swin_teacher())
    state = dict(teacher.model.state_dict())
    path = tmp_path / 'teacher.pth'
    torch.save({'state_dict': state, 'meta': {'note': Payload(marker)}}, path)
    return path, marker


def _extract_student(argv):
    tool = ROOT / 'tools/model_converters/extract_student.py'
    spec = importlib.util.spec_from_file_location('extract_student', tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


LOADERS = {
    'teacher_adapter': lambda p: MODELS.build(B.swin_teacher(checkpoint=str(p))),
    'init_cfg_pretrained': lambda p: MODELS.build(dict(
        B.swin_teacher()['model'], init_cfg=dict(type='Pretrained', checkpoint=str(p)))
    ).init_weights(),
    'load_from': lambda p: load_checkpoint(MODELS.build(B.swin_teacher()['model']), str(p)),
    'checkpoint_loader': lambda p: CheckpointLoader.load_checkpoint(str(p)),
    'extract_student': lambda p: _extract_student([str(p), str(p) + '.out']),
}


@pytest.mark.parametrize('path', list(LOADERS))
def test_malicious_teacher_checkpoint_is_refused(path: str, evil) -> None:
    ckpt, marker = evil
    with pytest.raises((UnsafeCheckpointError, SystemExit)) as exc:
        LOADERS[path](ckpt)
    message = str(exc.value if exc.type is UnsafeCheckpointError else exc.value.code)
    assert 'Refused to load checkpoint' in message and 'teacher.pth' in message
    assert 'execute code' in message
    assert not marker.exists()  # the payload never ran


def test_payload_runs_with_plain_pickle(evil) -> None:
    """Control: the same file does run its code when loaded unsafely (so the test can fail)."""
    ckpt, marker = evil
    torch.load(ckpt, weights_only=False)
    assert marker.exists()


def test_openmmlab_scheme_goes_through_the_safe_url_loader() -> None:
    import mmengine.runner.checkpoint as mm_checkpoint

    from mmscalekd.utils import checkpoint as ours
    # Registered schemes (register_all_modules, conftest), MMEngine's functions untouched.
    assert mm_checkpoint.load_from_http.__module__ == 'mmengine.runner.checkpoint'
    assert CheckpointLoader._schemes['open-mmlab://'] is ours.load_from_openmmlab_weights_only
    for prefix in ('http://', 'https://'):
        assert CheckpointLoader._schemes[prefix] is ours.load_from_http_weights_only
