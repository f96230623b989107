"""Small image sets held in memory: IDX files or a folder with one sub-folder per class.

Two layouts are read, detected from what ``data_root`` holds:

* **IDX** (the MNIST / Fashion-MNIST format): ``train-images-idx3-ubyte`` and
  ``train-labels-idx1-ubyte`` plus ``t10k-...`` (or ``test-...``) for the test split,
  uncompressed or ``.gz``. Class names come from an optional ``classes.txt`` (one per line),
  else they are ``'0'``, ``'1'``, ...
* **Image folder**: ``train/<class>/*.png`` and ``test/<class>/*`` (or ``val/<class>/*``); or
  only ``<class>/*``, in which case a stratified 20 % of every class (seed 0) is the test split.
  Class names are the sub-folder names, sorted. Unreadable images are skipped with a warning
  and counted (:attr:`ImageSet.skipped`).

Every image is converted to ``channels`` (1: grayscale, 3: RGB) and resized to
``img_size x img_size`` when given, so that the models of a config see one input shape. The
decoded arrays are cached per process while the files are unchanged, and handed out read-only.
:func:`ImageSet.fingerprint` identifies the training split by content (pixels after the
conversion, labels, class count), whatever the file format.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import os.path as osp
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .subsets import stratified_subset

#: Image file extensions of the folder layout (compared case-insensitively).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.tif', '.tiff', '.webp', '.pgm',
                    '.ppm')
#: IDX file stems per split (the MNIST names; EMNIST and others use ``test`` for ``t10k``).
IDX_STEMS = {'train': ('train',), 'test': ('t10k', 'test')}
#: Share of every class held out as the test split of a folder without train/test sub-folders.
FOLDER_TEST_SHARE = 0.2
_FINGERPRINT_VERSION = 'mmscalekd-image-set-v1'


@dataclass(frozen=True)
class Split:
    """One split of an :class:`ImageSet`.

    Attributes:
        images (np.ndarray): uint8 ``(N, H, W)`` (1 channel) or ``(N, H, W, 3)`` (RGB),
            read-only.
        labels (np.ndarray): int64 ``(N,)`` class indices, read-only.
    """
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class ImageSet:
    """A small labeled image set with a training and a test split.

    Attributes:
        root (str): The folder it was read from.
        format (str): ``'idx'`` or ``'folder'``.
        classes (tuple): Class names; label ``k`` is ``classes[k]``.
        train (Split): Training split.
        test (Split): Test split.
        files (tuple): ``(relative path, bytes)`` of every file read (folders: the count and
            the total are what :meth:`describe` reports).
        skipped (tuple): Relative paths of unreadable images that were left out.
        converted (str): What was changed on load (e.g. ``'RGB -> grayscale, 32x32 -> 28x28'``),
            empty when nothing was.
    """
    root: str
    format: str
    classes: Tuple[str, ...]
    train: Split
    test: Split
    files: Tuple[Tuple[str, int], ...]
    skipped: Tuple[str, ...] = ()
    converted: str = ''
    _cache: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """``(channels, height, width)`` of every image."""
        shape = self.train.images.shape
        return (1 if len(shape) == 3 else shape[3], shape[1], shape[2])

    def split(self, name: str) -> Split:
        if name not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {name!r}")
        return self.train if name == 'train' else self.test

    def fingerprint(self) -> Dict[str, Any]:
        """Identity of the training split, as stored in a teacher checkpoint's ``meta``.

        ``sha256`` hashes the training images after conversion, their labels and the class
        count, so the same pixels give the same hash from IDX or PNG files. The other entries
        describe the data for messages.

        Returns:
            dict: ``sha256``, ``num_train``, ``num_classes``, ``image_shape`` (C, H, W),
            ``format``, ``name`` (the folder's name), ``files``, ``bytes``, ``classes``.
        """
        if 'fingerprint' not in self._cache:
            digest = hashlib.sha256(_FINGERPRINT_VERSION.encode())
            digest.update(struct.pack('>4q', len(self.train), *self.image_shape))
            digest.update(struct.pack('>q', self.num_classes))
            digest.update(np.ascontiguousarray(self.train.images).tobytes())
            digest.update(self.train.labels.astype('>i8').tobytes())
            self._cache['fingerprint'] = dict(
                sha256=digest.hexdigest(), num_train=len(self.train),
                num_classes=self.num_classes, image_shape=list(self.image_shape),
                format=self.format, name=osp.basename(osp.normpath(self.root)),
                files=len(self.files), bytes=sum(size for _, size in self.files),
                classes=list(self.classes))
        return dict(self._cache['fingerprint'])

    def pixel_stats(self) -> Tuple[List[float], List[float]]:
        """Per-channel mean and std of the training images, in 0-255 units.

        Returns:
            tuple: ``(mean, std)``, each a list of ``channels`` floats (rounded to 0.01).
        """
        if 'stats' not in self._cache:
            imgs = self.train.images
            flat = imgs.reshape(len(imgs), -1, self.image_shape[0])
            total = np.zeros(flat.shape[2])
            total_sq = np.zeros(flat.shape[2])
            for start in range(0, len(flat), 4096):  # bounded float64 memory
                chunk = flat[start:start + 4096].astype(np.float64)
                total += chunk.sum(axis=(0, 1))
                total_sq += (chunk**2).sum(axis=(0, 1))
            count = flat.shape[0] * flat.shape[1]
            mean = total / count
            std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
            self._cache['stats'] = ([round(float(m), 2) for m in mean],
                                    [round(float(max(s, 1e-3)), 2) for s in std])
        mean, std = self._cache['stats']
        return list(mean), list(std)

    def describe(self) -> str:
        """One line for messages, e.g. ``'fashion_mnist' (IDX, 60000 training images, ...)``."""
        return describe_fingerprint(self.fingerprint())


def describe_fingerprint(fp: Dict[str, Any]) -> str:
    """Human-readable summary of a :meth:`ImageSet.fingerprint` (also one read from a file)."""
    shape = 'x'.join(str(v) for v in fp.get('image_shape', ()))
    kind = {'idx': 'IDX files', 'folder': 'image folder'}.get(fp.get('format'), fp.get('format'))
    return (f"{fp.get('name', '?')!r} ({kind}, {fp.get('num_train', '?')} training images, "
            f"{fp.get('num_classes', '?')} classes, images {shape}, "
            f"sha256 {str(fp.get('sha256', '?'))[:12]})")


# ----------------------------------------------------------------------------------- IDX files
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype('>i2'), 0x0C: np.dtype('>i4'),
               0x0D: np.dtype('>f4'), 0x0E: np.dtype('>f8')}


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file (``.gz`` or not) into an array.

    Args:
        path (str): File path.

    Returns:
        np.ndarray: The array with the dimensions the header states.
    """
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f'{path}: not an IDX file (the header must start with two zero bytes '
                         f'and a type code in {sorted(_IDX_DTYPES)}, got {list(data[:4])})')
    ndim = data[3]
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    dims = struct.unpack(f'>{ndim}I', data[4:4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f'{path}: the IDX header announces {dims} values ({expected} bytes), '
                         f'the file has {len(data)} bytes; it is truncated or not IDX')
    return np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)


def _idx_file(root: str, split: str, kind: str) -> Optional[str]:
    suffix = {'images': 'images-idx3-ubyte', 'labels': 'labels-idx1-ubyte'}[kind]
    for stem in IDX_STEMS[split]:
        for ext in ('', '.gz'):
            path = osp.join(root, f'{stem}-{suffix}{ext}')
            if osp.isfile(path):
                return path
    return None


def _has_idx(root: str) -> bool:
    return _idx_file(root, 'train', 'images') is not None


def _read_idx_split(root: str, split: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    paths = {kind: _idx_file(root, split, kind) for kind in ('images', 'labels')}
    missing = [k for k, p in paths.items() if p is None]
    if missing:
        names = ' or '.join(f'{s}-{"images-idx3" if k == "images" else "labels-idx1"}-ubyte'
                            for k in missing for s in IDX_STEMS[split])
        raise FileNotFoundError(f'{root}: the {split} split lacks {names} (uncompressed or .gz)')
    images, labels = read_idx(paths['images']), read_idx(paths['labels'])
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ValueError(f'{paths["images"]}: expected uint8 images (N, H, W) or (N, H, W, C), '
                         f'got {images.dtype} {images.shape}')
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f'{root}: {len(images)} images in {osp.basename(paths["images"])} but '
                         f'labels of shape {labels.shape} in {osp.basename(paths["labels"])}')
    return images, labels.astype(np.int64), [paths['images'], paths['labels']]


# -------------------------------------------------------------------------------- image folder
def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _class_dirs(folder: str) -> List[str]:
    return sorted(d for d in os.listdir(folder)
                  if osp.isdir(osp.join(folder, d)) and not d.startswith('.'))


def _folder_layout(root: str) -> Dict[str, Optional[str]]:
    """``{'train': folder, 'test': folder or None}``; None: the test split is held out."""
    subdirs = set(_class_dirs(root))
    if 'train' in subdirs:
        test = next((osp.join(root, n) for n in ('test', 'val') if n in subdirs), None)
        if test is None:
            raise FileNotFoundError(f'{root}: has train/ but neither test/ nor val/; add one with '
                                    'the same class sub-folders, or put the class folders '
                                    'directly in it (a stratified 20 % is then held out)')
        return {'train': osp.join(root, 'train'), 'test': test}
    return {'train': root, 'test': None}


def _list_folder(folder: str) -> Dict[str, List[str]]:
    found = {}
    for cls in _class_dirs(folder):
        files = []
        for dirpath, dirs, names in os.walk(osp.join(folder, cls), followlinks=True):
            dirs.sort()
            files.extend(osp.join(dirpath, n) for n in sorted(names) if _is_image(n))
        found[cls] = files
    return found


def _decode(path: str) -> Optional[np.ndarray]:
    import cv2
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    if img.dtype == np.uint16:  # 16-bit PNG/TIFF: scale to 8 bits
        img = (img // 257).astype(np.uint8)
    return img if img.dtype == np.uint8 else None


def _read_folder_split(folder: str, classes: Sequence[str]
                       ) -> Tuple[List[np.ndarray], List[int], List[str], List[str]]:
    listing = _list_folder(folder)
    unknown = sorted(set(listing) - set(classes))
    if unknown:
        raise ValueError(f'{folder}: class folders {unknown} are not among the training '
                         f'classes {list(classes)}')
    images, labels, files, skipped = [], [], [], []
    for label, cls in enumerate(classes):
        for path in listing.get(cls, []):
            files.append(path)
            img = _decode(path)
            if img is None:
                skipped.append(path)
                continue
            images.append(img)
            labels.append(label)
    return images, labels, files, skipped


# --------------------------------------------------------------------------------- conversion
def _convert(img: np.ndarray, channels: Optional[int], size: Optional[int],
             bgr: bool) -> np.ndarray:
    """To ``channels`` (1: gray, 3: RGB) and ``size x size``; ``bgr``: colour order of ``img``."""
    import cv2
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3 and bgr:
        img = img[..., ::-1]  # -> RGB
    if channels == 1 and img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    elif channels == 3 and img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if size is not None and img.shape[:2] != (size, size):
        shrink = img.shape[0] > size or img.shape[1] > size
        img = cv2.resize(np.ascontiguousarray(img), (size, size),
                         interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.ascontiguousarray(img)


def _stack(images: Sequence[np.ndarray], channels: Optional[int], size: Optional[int],
           bgr: bool, where: str) -> Tuple[np.ndarray, str]:
    shapes = {(img.shape[:2], 1 if img.ndim == 2 or img.shape[2] == 1 else 3) for img in images}
    out = [_convert(img, channels, size, bgr) for img in images]
    result_shapes = {img.shape for img in out}
    if len(result_shapes) > 1:
        raise ValueError(f'{where}: the images have different sizes or channel counts '
                         f'({sorted(result_shapes)[:4]}...); give img_size (and channels) so '
                         'that they are resized to one shape')
    notes = []
    in_channels = {c for _, c in shapes}
    if channels is not None and in_channels != {channels}:
        notes.append({(3, 1): 'RGB -> grayscale', (1, 3): 'grayscale -> RGB'}.get(
            (max(in_channels), channels), f'{sorted(in_channels)} -> {channels} channels'))
    in_sizes = {hw for hw, _ in shapes}
    if size is not None and in_sizes != {(size, size)}:
        shown = ', '.join(f'{h}x{w}' for h, w in sorted(in_sizes)[:3])
        notes.append(f'{shown}{"..." if len(in_sizes) > 3 else ""} -> {size}x{size}')
    return np.stack(out), ', '.join(notes)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _signature(root: str) -> Tuple:
    """What must be unchanged for the cached arrays to be valid: names, sizes, mtimes."""
    entries = []
    for dirpath, dirs, names in os.walk(root, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            path = osp.join(dirpath, name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            entries.append((osp.relpath(path, root), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


def load_image_set(data_root: str, img_size: Optional[int] = None,
                   channels: Optional[int] = None) -> ImageSet:
    """Read the image set in ``data_root`` (cached per process while its files are unchanged).

    Args:
        data_root (str): Folder with IDX files or class sub-folders (see the module docstring).
        img_size (int, optional): Resize every image to ``img_size x img_size``. Defaults to
            None (keep; the images must then share one size).
        channels (int, optional): 1 (grayscale) or 3 (RGB). Defaults to None (keep; the
            images must then share one channel count).

    Returns:
        ImageSet: Both splits, read-only.
    """
    if not isinstance(data_root, str) or not data_root:
        raise ValueError(f'data_root must be a non-empty folder path, got {data_root!r}')
    if not osp.isdir(data_root):
        raise FileNotFoundError(
            f'data_root {data_root!r} is not a folder. Give a folder with IDX files '
            '(train-images-idx3-ubyte, ...) or with one sub-folder of images per class.')
    if img_size is not None and (isinstance(img_size, bool) or not isinstance(img_size, int)
                                 or img_size < 1):
        raise ValueError(f'img_size must be a positive int or None, got {img_size!r}')
    if channels not in (None, 1, 3):
        raise ValueError(f'channels must be 1 (grayscale), 3 (RGB) or None (keep), '
                         f'got {channels!r}')
    root = osp.abspath(data_root)
    return _load_cached(root, img_size, channels, _signature(root))


@functools.lru_cache(maxsize=4)
def _load_cached(root: str, img_size: Optional[int], channels: Optional[int],
                 signature: Tuple) -> ImageSet:
    rel_size = {osp.join(root, rel): size for rel, size, _ in signature}
    if _has_idx(root):
        splits, files, notes = {}, [], ''
        for split in ('train', 'test'):
            images, labels, paths = _read_idx_split(root, split)
            files.extend(paths)
            needs = (channels is not None and (images.ndim == 4) != (channels == 3)) or (
                img_size is not None and images.shape[1:3] != (img_size, img_size))
            if needs:
                images, notes = _stack(list(images), channels, img_size, False, root)
            splits[split] = Split(_read_only(np.ascontiguousarray(images)),
                                  _read_only(labels))
        num_classes = int(max(splits['train'].labels.max(), splits['test'].labels.max())) + 1
        classes = _idx_classes(root, num_classes)
        return ImageSet(root, 'idx', classes, splits['train'], splits['test'],
                        tuple((osp.relpath(p, root), rel_size.get(p, 0)) for p in files),
                        converted=notes)

    layout = _folder_layout(root)
    classes = tuple(_class_dirs(layout['train']))
    if not classes:
        raise FileNotFoundError(
            f'{root}: no IDX files (train-images-idx3-ubyte, ...) and no class sub-folders. '
            'Give a folder with IDX files, or with one sub-folder of images per class '
            '(optionally inside train/ and test/).')
    images, labels, files, skipped = _read_folder_split(layout['train'], classes)
    if layout['test'] is not None:
        test_images, test_labels, test_files, test_skipped = _read_folder_split(
            layout['test'], classes)
        files, skipped = files + test_files, skipped + test_skipped
    else:
        test_images = test_labels = None
    empty = [c for k, c in enumerate(classes) if k not in set(labels)]
    if empty:
        raise ValueError(f'{layout["train"]}: class folders {empty} hold no readable image '
                         f'(accepted extensions: {", ".join(IMAGE_EXTENSIONS)})')
    if skipped:
        shown = ', '.join(osp.relpath(p, root) for p in skipped[:5])
        warnings.warn(f'{root}: skipped {len(skipped)} unreadable image(s): {shown}'
                      f'{" ..." if len(skipped) > 5 else ""}')
    train_arr, notes = _stack(images, channels, img_size, True, root)
    train_lab = np.asarray(labels, dtype=np.int64)
    if test_images is None:
        held = stratified_subset(train_lab, max(1, int(round(FOLDER_TEST_SHARE * len(train_lab)))),
                                 seed=0)
        keep = np.setdiff1d(np.arange(len(train_lab)), held)
        test_arr, test_lab = train_arr[held], train_lab[held]
        train_arr, train_lab = train_arr[keep], train_lab[keep]
    else:
        if not test_images:
            raise ValueError(f'{layout["test"]}: no readable image in the test split')
        test_arr, _ = _stack(test_images, channels, img_size, True, layout['test'])
        test_lab = np.asarray(test_labels, dtype=np.int64)
        if test_arr.shape[1:] != train_arr.shape[1:]:
            raise ValueError(f'{root}: test images are {test_arr.shape[1:]}, training images '
                             f'{train_arr.shape[1:]}; give img_size and channels')
    return ImageSet(
        root, 'folder', classes,
        Split(_read_only(np.ascontiguousarray(train_arr)), _read_only(train_lab)),
        Split(_read_only(np.ascontiguousarray(test_arr)), _read_only(test_lab)),
        tuple((osp.relpath(p, root), rel_size.get(p, 0)) for p in files),
        tuple(osp.relpath(p, root) for p in skipped), notes)


def _idx_classes(root: str, num_classes: int) -> Tuple[str, ...]:
    path = osp.join(root, 'classes.txt')
    if not osp.isfile(path):
        return tuple(str(k) for k in range(num_classes))
    with open(path, encoding='utf-8') as f:
        names = tuple(line.strip() for line in f if line.strip())
    if len(names) != num_classes:
        raise ValueError(f'{path} names {len(names)} classes, the labels use {num_classes}')
    return names
