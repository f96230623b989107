"""Reading pool and validation images as a stream: decode once, hash, run the pipeline."""
from __future__ import annotations

import os.path as osp
import re
import warnings
from typing import List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .dedup import phash64


class ImageStream(Dataset):
    """One image per item: its pHash (optional) and its packed tensor (optional).

    The first transform of ``pipeline`` loads the file; the pHash is taken from the loaded
    image (so every file is decoded once), then the rest of the pipeline runs. A file that
    cannot be read (missing, empty, truncated, not an image) gives ``ok=False`` and the
    reason; an error of the pipeline on an image that was read is a bug and is raised.

    Args:
        root (str): Folder the paths are relative to.
        rel_paths (Sequence[str]): The images.
        pipeline (Sequence[dict]): Loader first, ``PackInputs`` last.
        with_hash (bool): Compute pHashes. Defaults to True.
        with_inputs (bool): Run the pipeline after the loader. Defaults to True.
    """

    def __init__(self, root: str, rel_paths: Sequence[str], pipeline: Sequence[dict],
                 with_hash: bool = True, with_inputs: bool = True) -> None:
        from mmcv.transforms import Compose

        from mmscalekd.registry import TRANSFORMS
        self.root = root
        self.rel_paths = list(rel_paths)
        self.loader = TRANSFORMS.build(dict(pipeline[0]))
        self.rest = Compose([TRANSFORMS.build(dict(t)) for t in pipeline[1:]])
        self.with_hash = with_hash
        self.with_inputs = with_inputs

    def __len__(self) -> int:
        return len(self.rel_paths)

    def __getitem__(self, i: int) -> dict:
        path = osp.join(self.root, self.rel_paths[i])
        item = dict(index=i, ok=False, hash=np.uint64(0), error=None, inputs=None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            try:
                results = self.loader(dict(img_path=path, sample_idx=i))
            except FileNotFoundError:
                item['error'] = 'file not found'
                return item
            except Exception as err:  # noqa: BLE001  (any decoder's error)
                item['error'] = f'{type(err).__name__}: {err}'
                return item
        if results is None:
            reason = next((str(w.message) for w in caught), 'the loader skipped it')
            # LoadImageFromFileOrSkip says 'Skipping unreadable image "PATH" (REASON); ...'
            match = re.search(r'" \((.*)\); \d+ file', reason)
            item['error'] = match.group(1) if match else reason
            return item
        if self.with_hash:
            item['hash'] = phash64(results['img'])
        if self.with_inputs:
            try:
                packed = self.rest(results)
            except Exception as err:
                raise RuntimeError(
                    f'The pipeline failed on {path!r}, an image that was read fine: {err}. '
                    "This is a problem of the config's test pipeline, not of the image.") from err
            if packed is None:
                item['error'] = 'dropped by the pipeline'
                return item
            item['inputs'] = packed['inputs']
        item['ok'] = True
        return item


def collate(items: List[dict]) -> dict:
    """Batch items of :class:`ImageStream`; ``inputs`` holds the readable images only."""
    ok = np.array([it['ok'] for it in items], dtype=bool)
    inputs = [it['inputs'] for it in items if it['ok'] and it['inputs'] is not None]
    shapes = {tuple(t.shape) for t in inputs}
    if len(shapes) > 1:
        raise ValueError(f'the test pipeline gives images of different shapes {sorted(shapes)}; '
                         'mining batches them, so the pipeline must end in a fixed size (e.g. '
                         'CenterCrop after ResizeEdge)')
    return dict(index=np.array([it['index'] for it in items], dtype=np.int64), ok=ok,
                hash=np.array([it['hash'] for it in items], dtype=np.uint64),
                error=[it['error'] for it in items], inputs=inputs)


def iterate(stream: ImageStream, batch_size: int, num_workers: int,
            pin_memory: Optional[bool] = None):
    """Batches of a stream in order (``num_workers`` processes decode in parallel)."""
    loader = DataLoader(stream, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate,
                        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
                        persistent_workers=False)
    yield from loader
