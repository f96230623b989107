"""Image loading that skips unreadable or truncated files instead of stopping training."""
from __future__ import annotations

import warnings
from typing import List, Optional, Set

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio

from mmscalekd.registry import TRANSFORMS

_JPEG_SOI, _JPEG_SOS, _JPEG_EOI = b'\xff\xd8', b'\xff\xda', b'\xff\xd9'
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_MAX_KEPT_PATHS = 1000


def truncation_problem(data: bytes) -> Optional[str]:
    """Why ``data`` is an incomplete image file, or None when nothing is missing.

    Depending on the decoder and its version, a truncated JPEG may decode without an error
    (libjpeg fills the missing rows with grey and only prints a warning), so the end markers
    are checked on the bytes: a JPEG must hold an end-of-image marker after its last
    start-of-scan marker (entropy-coded data never contains ``FF D9``), a PNG its ``IEND``
    chunk. Other formats are left to the decoder.

    Args:
        data (bytes): The file's content.

    Returns:
        str | None: A short reason, e.g. ``'the file is empty'``.
    """
    if not data:
        return 'the file is empty'
    if data.startswith(_JPEG_SOI):
        last_scan = data.rfind(_JPEG_SOS)
        if last_scan < 0 or data.find(_JPEG_EOI, last_scan + 2) < 0:
            return 'truncated JPEG (no end-of-image marker after the last scan)'
    elif data.startswith(_PNG_SIGNATURE) and data.rfind(b'IEND') < 0:
        return 'truncated PNG (no IEND chunk)'
    return None


@TRANSFORMS.register_module()
class LoadImageFromFileOrSkip(LoadImageFromFile):
    """``LoadImageFromFile`` that returns None for a corrupt image, with a warning.

    MMEngine's ``BaseDataset.__getitem__`` (every mmpretrain dataset: ``ImageNet``,
    ``CustomDataset``, ...) draws another random index when the pipeline returns None,
    up to ``max_refetch`` (default 1000) times in a row, so one bad file in a large
    dataset costs one sample instead of the run. In ``test_mode`` (validation and test
    sets) MMEngine refuses a None sample, so use the plain ``LoadImageFromFile`` there:
    an evaluation must see every image.

    Skipped: empty files, truncated JPEG/PNG files (see :func:`truncation_problem`) and
    anything the decoder cannot read. A *missing* file still raises
    ``FileNotFoundError`` (a wrong ``data_root`` or annotation file is a configuration
    error, not a bad image). A file found bad once is not read again.

    The counts are per process (each DataLoader worker keeps its own copy of the
    pipeline); with ``num_workers=0`` read them on the dataset's pipeline, e.g.
    ``dataset.pipeline.transforms[0].num_skipped``.

    Args:
        check_truncation (bool): Check JPEG/PNG end markers on the raw bytes before
            decoding. Defaults to True.
        **kwargs: ``LoadImageFromFile`` arguments (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``backend_args``, ...).

    Attributes:
        num_skipped (int): Distinct files skipped so far.
        num_skip_events (int): Samples skipped so far (a bad file drawn twice counts twice).
        skipped_paths (list[str]): The first 1000 skipped files, in order.

    Shapes:
        Output ``results['img']``: ``(H, W, 3)`` uint8 (BGR for ``color_type='color'``), or
        the whole sample is None when skipped.

    Examples:
        >>> from mmscalekd.registry import TRANSFORMS
        >>> load = TRANSFORMS.build(dict(type='LoadImageFromFileOrSkip'))
        >>> train_pipeline = [load, dict(type='RandomResizedCrop', scale=224), ...]
    """

    def __init__(self, check_truncation: bool = True, **kwargs) -> None:
        if not isinstance(check_truncation, bool):
            raise TypeError(f'check_truncation must be a bool, got {check_truncation!r}')
        super().__init__(**kwargs)
        self.check_truncation = check_truncation
        self.num_skipped = 0
        self.num_skip_events = 0
        self.skipped_paths: List[str] = []
        self._bad: Set[str] = set()

    def _read(self, path: str) -> bytes:
        if self.file_client_args is not None:
            client = fileio.FileClient.infer_client(self.file_client_args, path)
            return client.get(path)
        return fileio.get(path, backend_args=self.backend_args)

    def _skip(self, path: str, reason: str) -> None:
        self.num_skip_events += 1
        if path in self._bad:
            return None
        self._bad.add(path)
        self.num_skipped += 1
        if len(self.skipped_paths) < _MAX_KEPT_PATHS:
            self.skipped_paths.append(path)
        warnings.warn(f'Skipping unreadable image "{path}" ({reason}); {self.num_skipped} '
                      'file(s) skipped so far in this process.', stacklevel=2)
        return None

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']``; None (skip the sample) if it cannot be decoded.

        Args:
            results (dict): With ``img_path``.

        Returns:
            dict | None: ``results`` with ``img``, ``img_shape``, ``ori_shape``; or None.
        """
        path = results['img_path']
        if path in self._bad:
            return self._skip(path, 'known bad')
        try:
            data = self._read(path)
        except FileNotFoundError:
            raise
        except Exception as err:  # noqa: BLE001  (any backend's read error)
            return self._skip(path, f'{type(err).__name__}: {err}')
        problem = truncation_problem(data) if self.check_truncation else None
        if problem is None:
            try:
                img = mmcv.imfrombytes(data, flag=self.color_type, backend=self.imdecode_backend)
            except Exception as err:  # noqa: BLE001  (cv2 / Pillow / turbojpeg errors differ)
                img, problem = None, f'{type(err).__name__}: {err}'
            if img is None and problem is None:
                problem = 'the decoder returned no image'
        if problem is not None:
            return self._skip(path, problem)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(check_truncation={self.check_truncation}, '
                f'to_float32={self.to_float32}, color_type={self.color_type!r}, '
                f'imdecode_backend={self.imdecode_backend!r}, '
                f'backend_args={self.backend_args})')
