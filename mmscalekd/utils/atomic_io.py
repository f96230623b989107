"""Tool outputs written atomically, never over an existing file without ``--force``.

Every file a tool writes (a student checkpoint, a published model, predictions, metrics,
a plot) goes through :class:`AtomicOutput`: the bytes are written to a hidden temporary
file in the destination folder (``.<name>.tmp-<host>-<pid><ext>``, same file system, so
the rename below is atomic), flushed and fsynced, then moved to the final name with
:func:`os.replace` and the folder is fsynced. A reader sees the previous file or the
complete new one, never a partial one; a write that fails or is killed leaves the
previous file untouched. A write that raises removes its temporary file; one killed with
SIGKILL leaves it behind, and the next write of the same output on the same host removes
it (its process is gone).

An existing output is replaced only when the caller says so (the tools' ``--force``);
otherwise :class:`OutputExistsError` names the file and the flag, before any work is done
(:func:`check_output`) and again at the end, where the final move refuses to clobber a file
that appeared meanwhile (a hard link, which fails when the name exists).

Library writers that always replace their file (checkpoints and ``last_checkpoint``, the
mining tool's parts and lists, the teacher cache's shards and manifests, the demo's results)
use :func:`replace_atomically`: the same temporary file, fsync and rename, with a
``.<name>.tmp-<pid>`` temporary that their own start-up cleanups recognise
(:func:`pid_temporary_path`).
"""
from __future__ import annotations

import errno
import os
import os.path as osp
import re
import socket
from types import TracebackType
from typing import IO, Any, Callable, List, NamedTuple, Optional, Type

__all__ = [
    'OutputExistsError', 'AtomicOutput', 'check_output', 'temporary_path',
    'remove_stale_temporaries', 'atomic_save', 'atomic_write_bytes', 'atomic_write_text',
    'atomic_dump', 'pid_temporary_path', 'fsync_replace', 'replace_atomically',
    'process_alive', 'PidTemporary', 'find_pid_temporaries'
]


class OutputExistsError(FileExistsError):
    """The output file exists and replacing it was not asked for."""


def _host() -> str:
    # A file name part: no separators, no dots (the pid follows the last '-').
    return socket.gethostname().replace(os.sep, '_').replace('.', '_') or 'host'


def temporary_path(path: str, pid: Optional[int] = None) -> str:
    """Where ``path`` is written before the rename: ``<folder>/.<name>.tmp-<host>-<pid><ext>``.

    The extension is kept last, so writers that pick a format from it (``mmengine.dump``,
    matplotlib's ``savefig``) and checks of it (MMEngine's ``DumpResults``) still work.

    Args:
        path (str): The final path.
        pid (int, optional): Process id. Defaults to this process.
    """
    folder, name = osp.split(osp.abspath(path))
    ext = osp.splitext(name)[1]
    return osp.join(folder, f'.{name}.tmp-{_host()}-{os.getpid() if pid is None else pid}{ext}')


def process_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: str) -> List[str]:
    """Remove temporaries of ``path`` left by killed writes on this host; return them.

    Only files named like :func:`temporary_path` of ``path`` with this host's name and the
    id of a process that no longer exists are removed (a write in progress keeps its file).
    """
    folder, name = osp.split(osp.abspath(path))
    ext = osp.splitext(name)[1]
    prefix = f'.{name}.tmp-{_host()}-'
    removed = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(ext)):
            continue
        pid_text = entry[len(prefix):len(entry) - len(ext)]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or process_alive(int(pid_text)):
            continue
        try:
            os.remove(osp.join(folder, entry))
            removed.append(osp.join(folder, entry))
        except OSError:
            pass
    return removed


def check_output(path: str, force: bool = False, flag: str = '--force',
                 what: str = 'output') -> str:
    """Refuse an output path before any work is done; return it as an absolute path.

    Args:
        path (str): The file to write.
        force (bool): Whether an existing file may be replaced. Defaults to False.
        flag (str): The option that allows it, named in the message. Defaults to ``'--force'``.
        what (str): What the file is, for messages. Defaults to ``'output'``.

    Raises:
        IsADirectoryError: ``path`` is a folder (or ends with a separator).
        FileNotFoundError: Its folder does not exist.
        PermissionError: Its folder is not writable.
        OutputExistsError: It exists and ``force`` is False.
    """
    path = str(path)
    if path.endswith(('/', os.sep)) or osp.isdir(path):
        raise IsADirectoryError(
            f'{what} {path!r} is a folder; give the name of a file (in it or elsewhere)')
    folder = osp.dirname(osp.abspath(path))
    if not osp.isdir(folder):
        raise FileNotFoundError(
            f'the folder of {what} {path!r} does not exist ({folder}); create it '
            f'(mkdir -p {folder}) or choose another path')
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f'cannot write {what} {path!r}: folder {folder} is not writable')
    if osp.lexists(path) and not force:
        raise OutputExistsError(
            f'{what} {path!r} exists; pass {flag} to replace it (the old file stays in place '
            'until the new one is complete), or choose another name')
    return osp.abspath(path)


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    with open(path, 'rb') as f:
        os.fsync(f.fileno())


def pid_temporary_path(path: str) -> str:
    """``<folder>/.<name>.tmp-<pid>``: the temporary of :func:`replace_atomically`."""
    folder, name = osp.split(osp.abspath(str(path)))
    return osp.join(folder, f'.{name}.tmp-{os.getpid()}')


_PID_TEMPORARY = re.compile(r'^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$')


class PidTemporary(NamedTuple):
    """A :func:`pid_temporary_path` file found by :func:`find_pid_temporaries`."""
    path: str  #: the temporary file
    name: str  #: the name of the file it was to replace
    pid: int  #: the process that wrote it


def find_pid_temporaries(folder: str, recursive: bool = False,
                         stale_only: bool = True) -> List[PidTemporary]:
    """The :func:`pid_temporary_path` files (``.<name>.tmp-<pid>``) in ``folder``, by name.

    The start-up cleanups of the writers of :func:`replace_atomically` remove what this
    finds; a missing folder has none.

    Args:
        folder (str): Where to look.
        recursive (bool): Also below ``folder``. Defaults to False.
        stale_only (bool): Leave out the files of processes that still run on this machine
            (and this process's own). False: every such file, for a caller that knows no
            write is in progress. Defaults to True.

    Returns:
        List[PidTemporary]: The files found, sorted by name within each folder.
    """
    if not osp.isdir(folder):
        return []
    walker = os.walk(folder) if recursive else [(folder, [], os.listdir(folder))]
    found = []
    for dirpath, _, names in walker:
        for entry in sorted(names):
            match = _PID_TEMPORARY.match(entry)
            path = osp.join(dirpath, entry)
            if match is None or not osp.isfile(path):
                continue
            pid = int(match['pid'])
            if stale_only and (pid == os.getpid() or process_alive(pid)):
                continue
            found.append(PidTemporary(path, match['name'], pid))
    return found


def fsync_replace(tmp: str, path: str) -> None:
    """Flush the complete file ``tmp`` to disk, rename it over ``path``, fsync the folder."""
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_folder(osp.dirname(osp.abspath(path)))


def replace_atomically(path: str, write: Callable[[IO[bytes]], Any]) -> None:
    """Replace ``path`` by what ``write`` writes, so that it is the old or the new file.

    The folder of ``path`` is created. ``write`` gets the open binary temporary file; on
    success it is flushed, fsynced and renamed over ``path`` (:func:`fsync_replace`); if
    anything raises, the temporary file is removed and ``path`` is untouched.

    Args:
        path (str): Local destination; a ``file://`` prefix is accepted.
        write (Callable): Writes the content to the binary file object it is given.
    """
    path = str(path)
    if path.startswith('file://'):
        path = path[len('file://'):]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = pid_temporary_path(path)
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(osp.dirname(osp.abspath(path)))


def _move_no_clobber(tmp: str, path: str) -> None:
    """Move ``tmp`` to ``path``, failing with FileExistsError if ``path`` exists."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as err:  # no hard links here (some network / FAT file systems)
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                             errno.EMLINK, errno.ENOSYS):
            raise
        if osp.lexists(path):
            raise FileExistsError(errno.EEXIST, 'File exists', path) from None
        os.replace(tmp, path)
        return
    os.remove(tmp)


class AtomicOutput:
    """Context manager: write to :attr:`tmp`, and the file appears at :attr:`path` on success.

    Example:
        >>> with AtomicOutput('student.pth', force=args.force) as out:
        ...     torch.save(obj, out.tmp)

    :attr:`path` may be changed inside the block (``publish_model.py`` names its file
    after the hash of the written bytes), and :meth:`cancel` gives the write up. On an
    exception the temporary file is removed and the previous file at :attr:`path` is
    untouched.

    Args:
        path (str): The final path (local).
        force (bool): Replace an existing file. Defaults to False.
        flag (str): The option named when an existing file is refused. Defaults to
            ``'--force'``.
        what (str): What the file is, for messages. Defaults to ``'output'``.
    """

    def __init__(self, path: str, force: bool = False, flag: str = '--force',
                 what: str = 'output') -> None:
        self.force, self.flag, self.what = force, flag, what
        self.path = check_output(path, force, flag, what)
        self.tmp = temporary_path(self.path)
        self.stale_removed: List[str] = []
        self.cancelled = False

    def __enter__(self) -> 'AtomicOutput':
        self.stale_removed = remove_stale_temporaries(self.path)
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        if exc_type is not None or self.cancelled:
            self.discard()
            return
        try:
            if not osp.isfile(self.tmp):
                raise FileNotFoundError(f'nothing was written to {self.tmp!r} for {self.path!r}')
            _fsync_file(self.tmp)
            if self.force:
                os.replace(self.tmp, self.path)
            else:
                try:
                    _move_no_clobber(self.tmp, self.path)
                except FileExistsError:
                    raise OutputExistsError(
                        f'{self.what} {self.path!r} appeared while it was being written; '
                        f'pass {self.flag} to replace it, or choose another name') from None
            _fsync_folder(osp.dirname(self.path))
        except BaseException:
            self.discard()
            raise

    def cancel(self) -> None:
        """Give the write up: the temporary file goes, whatever is at :attr:`path` stays."""
        self.cancelled = True
        self.discard()

    def discard(self) -> None:
        """Remove the temporary file if it exists."""
        try:
            os.remove(self.tmp)
        except FileNotFoundError:
            pass


def _write_with(path: str, write: Callable[[str], Any], force: bool, what: str) -> str:
    with AtomicOutput(path, force=force, what=what) as out:
        write(out.tmp)
    return out.path


def atomic_save(obj: Any, path: str, force: bool = False, what: str = 'output') -> str:
    """``torch.save(obj, path)`` through :class:`AtomicOutput`; returns the absolute path."""
    import torch
    return _write_with(path, lambda tmp: torch.save(obj, tmp), force, what)


def atomic_write_bytes(path: str, data: bytes, force: bool = False,
                       what: str = 'output') -> str:
    """Write ``data`` to ``path`` through :class:`AtomicOutput`."""

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            f.write(data)
    return _write_with(path, write, force, what)


def atomic_write_text(path: str, text: str, force: bool = False, what: str = 'output') -> str:
    """Write ``text`` (UTF-8) to ``path`` through :class:`AtomicOutput`."""
    return atomic_write_bytes(path, text.encode('utf-8'), force, what)


def atomic_dump(obj: Any, path: str, force: bool = False, what: str = 'output') -> str:
    """``mmengine.dump(obj, path)`` (format from the extension) through :class:`AtomicOutput`."""
    import mmengine
    ext = osp.splitext(path)[1].lstrip('.')
    return _write_with(path, lambda tmp: mmengine.dump(obj, tmp, file_format=ext or None),
                       force, what)
