"""Writing the demo's outputs: atomically, and never over an earlier run's without being asked."""
from __future__ import annotations

import datetime
import os
import os.path as osp
import shutil
from typing import List, Optional, Sequence

# The writers of the demo's files: replace_atomically and its text and torch.save forms.
# A crash or a kill during a write leaves the previous file untouched (and at most a
# ``.<name>.tmp-<pid>`` file, which :func:`remove_stale_temporaries` deletes).
from mmscalekd.utils.atomic_checkpoint import atomic_torch_save, atomic_write_text  # noqa: F401
from mmscalekd.utils.atomic_io import find_pid_temporaries
from mmscalekd.utils.atomic_io import replace_atomically as atomic_write  # noqa: F401

#: What a demo run leaves in its work dir (the teachers it trains live in ``teachers/``, which
#: is kept across runs: a teacher is reused for as long as its data is unchanged).
RUN_OUTPUTS = ('results.json', 'results.md', 'accuracy_curves.png', 'runs')


def remove_stale_temporaries(folder: str, recursive: bool = False) -> List[str]:
    """Delete ``.<name>.tmp-<pid>`` files left by killed writes (their process is gone).

    Args:
        folder (str): Where to look.
        recursive (bool): Also below ``folder``. Defaults to False.

    Returns:
        List[str]: The deleted paths.
    """
    removed = []
    for tmp in find_pid_temporaries(folder, recursive=recursive):
        os.remove(tmp.path)
        removed.append(tmp.path)
    return removed


def existing_outputs(work_dir: str, names: Sequence[str] = RUN_OUTPUTS) -> List[str]:
    """The outputs of an earlier run present in ``work_dir``."""
    return [n for n in names if osp.exists(osp.join(work_dir, n))]


def keep_or_replace_outputs(work_dir: str, replace: bool,
                            names: Sequence[str] = RUN_OUTPUTS) -> Optional[str]:
    """Make room for a new run's outputs in ``work_dir``.

    An earlier run's outputs are moved to ``work_dir/previous/<time of its results>/`` (kept),
    or deleted when ``replace`` is True (the user's ``--force``).

    Args:
        work_dir (str): The demo's work dir.
        replace (bool): Delete instead of keeping.
        names (Sequence[str]): The output names. Defaults to :data:`RUN_OUTPUTS`.

    Returns:
        str | None: Where the earlier outputs were moved, None if none were or they were
        deleted.
    """
    found = existing_outputs(work_dir, names)
    if not found:
        return None
    if replace:
        for name in found:
            path = osp.join(work_dir, name)
            shutil.rmtree(path) if osp.isdir(path) and not osp.islink(path) else os.remove(path)
        return None
    stamp_from = osp.join(work_dir, 'results.json')
    mtime = osp.getmtime(stamp_from if osp.exists(stamp_from) else osp.join(work_dir, found[0]))
    stamp = datetime.datetime.fromtimestamp(mtime).strftime('%Y%m%d-%H%M%S')
    target = osp.join(work_dir, 'previous', stamp)
    suffix = 1
    while osp.exists(target):
        suffix += 1
        target = osp.join(work_dir, 'previous', f'{stamp}-{suffix}')
    os.makedirs(target)
    for name in found:
        os.replace(osp.join(work_dir, name), osp.join(target, name))
    return target
