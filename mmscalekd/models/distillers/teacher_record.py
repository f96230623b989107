"""Which teacher a distiller checkpoint was trained with: its weight source and their sha256.

A distiller whose teacher is reloaded from its own weights at build (a checkpoint path or URL,
timm's ``pretrained=True`` or an ``init_cfg`` Pretrained: the adapter's ``weights_source``)
leaves ``teacher.*`` out of its state dict; this record goes to
the checkpoint's ``meta['teacher']`` instead (``ScaleKDDistiller.checkpoint_meta``, written by
``SafeCheckpointHook``). Before a checkpoint is loaded the record is compared with the teacher
the config built; a different teacher is an error (:class:`TeacherMismatchError`).
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
from typing import Dict, Optional, Tuple

_REMOTE = ('http://', 'https://')
# (path, size, mtime) -> sha256: a teacher file is hashed once per process.
_SHA_CACHE: Dict[Tuple[str, int, float], str] = {}


class TeacherMismatchError(ValueError):
    """The checkpoint was trained with another teacher than the one the config builds."""


def file_sha256(path: str) -> Optional[str]:
    """sha256 of a local file (cached by path, size and modification time), None if absent."""
    if not osp.isfile(path):
        return None
    stat = os.stat(path)
    key = (osp.abspath(path), stat.st_size, stat.st_mtime)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 22), b''):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def _local_copy(checkpoint: str) -> str:
    """The file a checkpoint path or URL was read from (URLs: torch hub's download cache)."""
    if checkpoint.startswith(_REMOTE):
        from torch.hub import get_dir
        return osp.join(get_dir(), 'checkpoints', osp.basename(checkpoint.split('?')[0]))
    return osp.expanduser(checkpoint)


def teacher_record(teacher) -> Dict[str, object]:
    """What identifies a built teacher's weights.

    Args:
        teacher (BaseTeacher): The distiller's teacher adapter.

    Returns:
        dict: ``type``, ``model_name`` (timm) or None, ``checkpoint`` (as configured) or
        None, ``source``: where the weights come from (the adapter's ``weights_source``:
        the checkpoint, ``timm pretrained weights of '<name>'`` or an ``init_cfg``
        Pretrained; None for random weights), ``sha256`` of the checkpoint file (None when
        unknown), and ``reloaded``: whether the weights come back at build, so that a
        checkpoint need not store them.
    """
    checkpoint = getattr(teacher, 'checkpoint', None)
    source = getattr(teacher, 'weights_source', checkpoint)
    return dict(type=type(teacher).__name__, model_name=getattr(teacher, 'model_name', None),
                checkpoint=checkpoint, source=source,
                sha256=file_sha256(_local_copy(checkpoint)) if checkpoint else None,
                reloaded=bool(source))


def _describe(record: dict) -> str:
    name = record.get('type') or 'teacher'
    if record.get('model_name'):
        name += f'({record["model_name"]!r})'
    if record.get('checkpoint'):
        sha = record.get('sha256')
        return f'{name} from {record["checkpoint"]} (sha256 {sha[:12] if sha else "unknown"})'
    return f'{name} with {record.get("source") or "random weights"}'


def check_teacher(saved: Optional[dict], current: dict) -> Optional[str]:
    """Compare the record of a checkpoint with the teacher built now.

    Args:
        saved (dict, optional): The checkpoint's record (None: an older checkpoint, which
            stores the teacher weights themselves).
        current (dict): :func:`teacher_record` of the teacher built now.

    Returns:
        str | None: A warning when the two cannot be compared exactly (no hash on one
        side, different paths); None when they agree.

    Raises:
        TeacherMismatchError: The teachers differ (another file, architecture or source).
    """
    if not saved or not saved.get('reloaded'):
        return None  # the checkpoint holds the teacher weights: nothing to compare
    next_step = ('Resume with the config (and teacher checkpoint) this run was trained with. '
                 'To start from these weights with another teacher, extract the student '
                 '(tools/model_converters/extract_student.py) and use it as the student\'s '
                 'init_cfg.')
    what = f'the checkpoint was trained with {_describe(saved)}, the config builds ' \
           f'{_describe(current)}'
    if (saved.get('type'), saved.get('model_name')) != (current.get('type'),
                                                       current.get('model_name')):
        raise TeacherMismatchError(f'Another teacher: {what}. {next_step}')
    if bool(saved.get('checkpoint')) != bool(current.get('checkpoint')) or (
            not saved.get('checkpoint') and saved.get('source') != current.get('source')):
        raise TeacherMismatchError(f'Another teacher weight source: {what}. {next_step}')
    if saved.get('sha256') and current.get('sha256'):
        if saved['sha256'] != current['sha256']:
            raise TeacherMismatchError(f'Other teacher weights: {what}. {next_step}')
        return None
    if saved.get('checkpoint') != current.get('checkpoint'):
        return (f'Cannot verify the teacher ({what}; a file hash is missing). Make sure it is '
                'the same teacher.')
    return None
