"""A dataset of images without labels, for label-free distillation (SSLD).

SSLD: Cui et al., "Beyond Self-Supervision: A Simple Yet Effective Network
Distillation Alternative to Improve Backbones", https://arxiv.org/abs/2103.05959
"""
from __future__ import annotations

import json
import os
import os.path as osp
import warnings
from typing import Any, List, Optional, Sequence, Union

import mmcv
from mmengine import fileio
from mmpretrain.datasets import BaseDataset

from mmscalekd.registry import DATASETS

#: Accepted image file extensions (compared case-insensitively).
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff', '.ppm', '.pgm',
                  '.gif')


def is_image_file(name: str) -> bool:
    """Whether a file name has one of :data:`IMG_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMG_EXTENSIONS)


def scan_image_folder(folder: str) -> List[str]:
    """List every image below ``folder``, recursively, as sorted relative paths.

    Files without an image extension are ignored. Symbolic links to folders are
    followed.

    Args:
        folder (str): The folder to scan.

    Returns:
        List[str]: Paths relative to ``folder`` with ``/`` separators, sorted.
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'The image folder "{folder}" does not exist or is not a folder.')
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in files:
            if is_image_file(name):
                rel = osp.relpath(osp.join(root, name), folder)
                found.append(rel.replace(os.sep, '/'))
    found.sort()
    return found


def _needs_quotes(path: str) -> bool:
    # Lone surrogates (undecodable bytes of a file name) are not printable either.
    return path[:1] in ('#', '"') or any(c.isspace() or not c.isprintable() for c in path)


def format_file_list_line(path: str) -> str:
    """One line of a file list (without the newline) that :func:`read_file_list` reads back.

    A plain path is written as is. A path that a plain line could not carry -- one that
    contains whitespace or a control character, starts with ``#`` (a comment) or ``"``, or
    holds characters that are not valid UTF-8 (undecodable bytes of a POSIX file name, which
    Python keeps as lone surrogates) -- is written as a JSON string literal, e.g.
    ``"my photo.jpg"``.

    Args:
        path (str): The relative path.

    Returns:
        str: The line.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f'a file list entry must be a non-empty str, got {path!r}')
    if not _needs_quotes(path):
        return path
    # JSON escapes quotes, backslashes and C0 controls; escape every other character that is
    # not printable too (line separators such as U+2028 or U+0085, lone surrogates), so that
    # the line stays one line of valid UTF-8.
    out = []
    for c in json.dumps(path, ensure_ascii=False):
        if c.isprintable() or c == ' ':
            out.append(c)
        elif ord(c) > 0xFFFF:  # a UTF-16 surrogate pair, as JSON writes astral characters
            v = ord(c) - 0x10000
            out.append(f'\\u{0xD800 + (v >> 10):04x}\\u{0xDC00 + (v & 0x3FF):04x}')
        else:
            out.append(f'\\u{ord(c):04x}')
    return ''.join(out)


def read_file_list(ann_file: str, root: Optional[str] = None) -> List[str]:
    """Read a file list: one relative image path per line.

    * A line that starts with ``"`` holds a JSON string literal: the path, exactly
      (spaces, ``#``, unicode and escaped undecodable bytes included); anything after
      the closing quote (e.g. a label column) is ignored. :func:`format_file_list_line`
      writes such lines for the names that need them.
    * Otherwise blank lines and lines starting with ``#`` are ignored, and the path is the
      line's first whitespace-separated field: anything after it (e.g. the label column of a
      labeled ImageNet list) is ignored, so labeled lists can be reused; labels are never
      read.

    Args:
        ann_file (str): Path of the list (UTF-8).
        root (str, optional): Folder the paths are relative to. When given, a ``#`` line
            whose text names an existing file there is reported (a warning: it is read as a
            comment; ``"#name.jpg"`` includes the file), and an unquoted line whose whole text,
            not its first field, names a file (``my photo.jpg``) is an error.

    Returns:
        List[str]: The paths in file order.

    Raises:
        ValueError: A quoted line is not a valid JSON string literal, or (with ``root``) an
            unquoted name with spaces; the line number is named.
    """
    paths = []
    decoder = json.JSONDecoder()
    # Lines end at '\n' only (str.splitlines would also split at U+2028, U+0085, ...).
    for number, raw in enumerate(fileio.get_text(ann_file).split('\n'), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith('#'):
            named = line.split()[0]
            if root is not None and osp.isfile(osp.join(root, named)):
                warnings.warn(
                    f'{ann_file}:{number}: {named!r} is read as a comment (the line starts with '
                    f"'#') although {osp.join(root, named)!r} exists; write the line as "
                    f'{format_file_list_line(named)} to include the file.')
            continue
        if line.startswith('"'):
            try:
                path, _ = decoder.raw_decode(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f'{ann_file}:{number}: a line starting with \'"\' must hold a JSON '
                    f'string literal (the path, e.g. "my photo.jpg"), got {raw!r} ({err.msg}). '
                    'Quote the path as JSON, or write it without the leading quote.') from None
            if not path:
                raise ValueError(f'{ann_file}:{number}: empty path "" in the file list')
            paths.append(path)
        else:
            first = line.split()[0]
            if (root is not None and first != line and not osp.isfile(osp.join(root, first))
                    and osp.isfile(osp.join(root, line))):
                raise ValueError(
                    f'{ann_file}:{number}: {line!r} names a file, but an unquoted line ends '
                    f'its path at the first space ({first!r}); write the line as '
                    f'{format_file_list_line(line)}')
            paths.append(first)
    return paths


@DATASETS.register_module()
class UnlabeledImageFolder(BaseDataset):
    """Images without labels: a scanned folder or a file list.

    Each sample carries ``img_path`` only (no ``gt_label``), so after
    mmpretrain's usual pipeline (``LoadImageFromFile`` ... ``PackInputs``) its
    ``DataSample`` has no ``gt_label`` field. Use it with a label-free
    distiller (``ScaleKDDistiller(label_free=True)``), alone or inside
    :class:`LabeledUnlabeledDataset`.

    Images that cannot be read at load time (corrupt, truncated, unreadable)
    are skipped with a warning and counted in :attr:`num_skipped`; another
    random index is drawn instead, so a broken file never stops an epoch.
    The count is per process: with DataLoader workers, each worker keeps its
    own count (the warnings are still emitted).

    Args:
        data_root (str): Root folder. Defaults to ''.
        data_prefix (str | dict): Folder below ``data_root`` holding the images
            (``dict(img_path=...)`` or a string). Defaults to ''.
        ann_file (str): Optional file list, one image path per line relative
            to ``data_root``/``data_prefix``, in the format of :func:`read_file_list`
            (blank lines and ``#`` comments are ignored; a name with spaces, a
            leading ``#`` or other special characters is a JSON-quoted line, as the
            mining tool writes it). If empty, the folder is scanned recursively for files with
            an extension in :data:`IMG_EXTENSIONS` (case-insensitive).
            Defaults to ''.
        pipeline (Sequence): Transforms, as for any mmpretrain dataset.
            Defaults to ().
        classes (str | Sequence[str], optional): Class names to expose as
            metainfo (e.g. for a student head's metainfo); labels are never
            read. Defaults to None.
        check_files (bool): In file-list mode, fail at init if listed files do
            not exist. Defaults to True.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``indices``, ``serialize_data``, ``lazy_init``, ``max_refetch``,
            ``test_mode``, ``metainfo``).

    Examples:
        >>> ds = UnlabeledImageFolder(data_root='data/unlabeled', pipeline=[
        ...     dict(type='LoadImageFromFile'), dict(type='RandomResizedCrop', scale=224),
        ...     dict(type='PackInputs')])
        >>> sample = ds[0]
        >>> 'gt_label' in sample['data_samples']
        False
    """

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Union[str, dict] = '',
                 ann_file: str = '',
                 pipeline: Sequence = (),
                 classes: Union[str, Sequence[str], None] = None,
                 check_files: bool = True,
                 **kwargs: Any) -> None:
        if not isinstance(ann_file, str):
            raise TypeError(f'ann_file must be a str (use "" to scan the folder), '
                            f'got {type(ann_file).__name__}: {ann_file!r}')
        if not isinstance(data_prefix, (str, dict)):
            raise TypeError(f'data_prefix must be a str or dict(img_path=...), '
                            f'got {type(data_prefix).__name__}: {data_prefix!r}')
        self.check_files = check_files
        self.num_skipped = 0
        self.skipped_paths: List[str] = []
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=pipeline,
            classes=classes,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Scan the folder or read the file list.

        Returns:
            List[dict]: One ``dict(img_path=...)`` per image; no ``gt_label``.
        """
        folder = self.img_prefix or self.data_root
        if self.ann_file:
            rel_paths = read_file_list(self.ann_file, folder)
            if not rel_paths:
                raise ValueError(f'The file list "{self.ann_file}" names no image.')
            if self.check_files:
                missing = [p for p in rel_paths if not osp.isfile(osp.join(folder, p))]
                if missing:
                    shown = ', '.join(missing[:5])
                    raise FileNotFoundError(
                        f'{len(missing)} of {len(rel_paths)} files listed in "{self.ann_file}" '
                        f'do not exist below "{folder}", e.g.: {shown}')
        else:
            rel_paths = scan_image_folder(folder)
            if not rel_paths:
                raise ValueError(
                    f'No image found below "{folder}". Accepted extensions '
                    f'(case-insensitive): {", ".join(IMG_EXTENSIONS)}')
        return [dict(img_path=osp.join(folder, p)) for p in rel_paths]

    def prepare_data(self, idx: int) -> Optional[dict]:
        """Run the pipeline on one sample; ``None`` (skip) if its image is unreadable.

        Errors from an image that decodes fine are re-raised, so a broken
        pipeline is not hidden behind the skip logic.
        """
        try:
            return super().prepare_data(idx)
        except Exception as err:
            path = self.get_data_info(idx)['img_path']
            if image_is_readable(path):
                raise
            self.num_skipped += 1
            if len(self.skipped_paths) < 1000:  # keep memory bounded on huge pools
                self.skipped_paths.append(path)
            warnings.warn(f'Skipping unreadable image "{path}" ({type(err).__name__}: {err}); '
                          f'{self.num_skipped} skipped so far in this process.')
            return None

    def __getitem__(self, idx: int) -> dict:
        # mmengine refuses a None sample in test mode; an unlabeled set has no
        # fixed evaluation order to keep, so always resample instead.
        test_mode, self.test_mode = self.test_mode, False
        try:
            return super().__getitem__(idx)
        finally:
            self.test_mode = test_mode


def image_is_readable(path: str) -> bool:
    """Whether ``path`` exists and decodes to an image."""
    try:
        img = mmcv.imfrombytes(fileio.get(path))
    except Exception:
        return False
    return img is not None
