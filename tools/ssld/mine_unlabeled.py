"""Mine unlabeled images for SSLD: teacher top-k per class, minus val near-duplicates.

SSLD (Cui et al., https://arxiv.org/abs/2103.05959; PaddleClas docs) mined ~4M
ImageNet-22k images: remove images matching the ImageNet-1k validation set, score
the rest with the teacher, and keep for every class the k images with the
highest softmax score for that class (following Yalniz et al., "Billion-scale
semi-supervised learning", where each image competes for its top-P classes).

Usage::

    python tools/ssld/mine_unlabeled.py CONFIG [--checkpoint CKPT] \\
        --pool data/in22k --val data/imagenet/val --topk 4000 --out work_dirs/mined

``CONFIG`` is an mmscalekd/mmpretrain config whose ``model`` is a classifier
(``ImageClassifier``), a teacher adapter (``TimmTeacher`` ...), or a distiller
(its ``teacher`` is used). The pool is read as a stream (never all images in
memory); every ``--save-every`` batches the results so far are written to
``OUT/parts/``, and a restarted run skips the files found there. Outputs in
``OUT``: ``filelist.txt`` (relative paths, no labels; the input of
``UnlabeledImageFolder(ann_file=...)``), ``selection.csv`` (path, class,
score), ``summary.json`` and ``score_hist.png``.
"""
from __future__ import annotations

# isort: off
import os.path as _osp
import sys as _sys

# Run from a checkout without installing: put the repository root on the path.
_sys.path.insert(0, _osp.dirname(_osp.dirname(_osp.dirname(_osp.abspath(__file__)))))
import mmscalekd  # noqa: F401,E402  (compat fixes before torchvision/mmpretrain)
# isort: on
import argparse  # noqa: E402
import csv
import json
import os
import os.path as osp
import sys
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

#: A scorer maps RGB uint8 images ``(B, 3, H, W)`` to ``(logits (B, K), features (B, D) | None)``.
Scorer = Callable[[Tensor], Tuple[Tensor, Optional[Tensor]]]

DEDUP_MODES = ('phash', 'feature', 'both', 'none')
_IMAGENET_MEAN = (123.675, 116.28, 103.53)
_IMAGENET_STD = (58.395, 57.12, 57.375)


# ----------------------------------------------------------------------------- perceptual hash
def _dct_matrix(n: int) -> np.ndarray:
    """Unnormalised DCT-II matrix ``D`` with ``(D @ x)[k] = 2 sum_i x_i cos(pi k (2i+1) / 2n)``."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


def phash_bits_numpy(img: Image.Image, hash_size: int = 8, highfreq_factor: int = 4) -> np.ndarray:
    """Perceptual hash in pure numpy/PIL (the fallback when ``imagehash`` is missing).

    Grey image resized to ``hash_size * highfreq_factor`` squared (Lanczos), 2-D
    DCT-II, the ``hash_size``-squared lowest frequencies thresholded at their
    median. Same definition as ``imagehash.phash``.

    Returns:
        np.ndarray: ``(hash_size * hash_size,)`` bool.
    """
    n = hash_size * highfreq_factor
    pixels = np.asarray(img.convert('L').resize((n, n), Image.Resampling.LANCZOS),
                        dtype=np.float64)
    d = _dct_matrix(n)
    low = (d @ pixels @ d.T)[:hash_size, :hash_size]
    return (low > np.median(low)).flatten()


def phash_bits(img: Image.Image, backend: str = 'auto') -> np.ndarray:
    """64-bit perceptual hash as a bool vector, via ``imagehash`` or the numpy fallback.

    Args:
        img (Image.Image): Any PIL image.
        backend (str): 'auto' (imagehash if importable), 'imagehash' or 'numpy'.
    """
    if backend not in ('auto', 'imagehash', 'numpy'):
        raise ValueError(f'backend must be auto, imagehash or numpy, got {backend!r}')
    if backend != 'numpy':
        try:
            import imagehash
        except ImportError:
            if backend == 'imagehash':
                raise
        else:
            return np.asarray(imagehash.phash(img).hash, dtype=bool).flatten()
    return phash_bits_numpy(img)


def pack_hash(bits: np.ndarray) -> np.uint64:
    """Pack 64 hash bits into one ``uint64``."""
    return np.frombuffer(np.packbits(bits.astype(bool)).tobytes(), dtype='>u8')[0].astype(
        np.uint64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between packed hashes, ``(N,) x (M,) -> (N, M)``."""
    x = np.bitwise_xor(a[:, None].astype(np.uint64), b[None, :].astype(np.uint64))
    return np.bitwise_count(x).astype(np.int64)


# ----------------------------------------------------------------------------- image stream
class _ImageStream(Dataset):
    """Loads, hashes and resizes images one at a time (unreadable ones -> ``ok=False``)."""

    def __init__(self, root: str, rel_paths: Sequence[str], resize: int, crop: int,
                 with_hash: bool, hash_backend: str) -> None:
        self.root, self.rel_paths = root, list(rel_paths)
        self.resize, self.crop = resize, crop
        self.with_hash, self.hash_backend = with_hash, hash_backend

    def __len__(self) -> int:
        return len(self.rel_paths)

    def __getitem__(self, i: int) -> dict:
        out = dict(index=i, ok=False, hash=np.uint64(0),
                   img=torch.zeros(3, self.crop, self.crop, dtype=torch.uint8))
        try:
            with Image.open(osp.join(self.root, self.rel_paths[i])) as im:
                im = im.convert('RGB')
                im.load()
        except Exception as err:  # corrupt / truncated / not an image
            out['error'] = f'{type(err).__name__}: {err}'
            return out
        if self.with_hash:
            out['hash'] = pack_hash(phash_bits(im, self.hash_backend))
        w, h = im.size
        scale = self.resize / min(w, h)
        im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                       Image.Resampling.BILINEAR)
        w, h = im.size
        left, top = (w - self.crop) // 2, (h - self.crop) // 2
        im = im.crop((left, top, left + self.crop, top + self.crop))
        out['img'] = torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1).contiguous()
        out['ok'] = True
        return out


def _collate(items: List[dict]) -> dict:
    return dict(index=np.array([it['index'] for it in items], dtype=np.int64),
                ok=np.array([it['ok'] for it in items], dtype=bool),
                hash=np.array([it['hash'] for it in items], dtype=np.uint64),
                error=[it.get('error') for it in items],
                img=torch.stack([it['img'] for it in items]))


def _iterate(root: str, rel_paths: Sequence[str], args: dict, with_hash: bool,
             desc: str, progress: bool):
    stream = _ImageStream(root, rel_paths, args['resize'], args['crop'], with_hash,
                          args['hash_backend'])
    loader = DataLoader(stream, batch_size=args['batch_size'], shuffle=False,
                        num_workers=args['num_workers'], collate_fn=_collate)
    if progress:
        from tqdm import tqdm
        loader = tqdm(loader, desc=desc, unit='batch', file=sys.stderr)
    yield from loader


def _score(scorer: Scorer, img: Tensor, ok: np.ndarray) -> Tuple[Tensor, Optional[Tensor]]:
    with torch.inference_mode():
        logits, feats = scorer(img)
    probs = logits.float().softmax(dim=-1).cpu()
    if feats is not None:
        feats = torch.nn.functional.normalize(feats.float().flatten(1), dim=1).cpu()
    return probs, feats


# ----------------------------------------------------------------------------- mining
def _list_images(folder: str, file_list: Optional[str]) -> List[str]:
    from mmscalekd.datasets.unlabeled_image_folder import read_file_list, scan_image_folder
    paths = read_file_list(file_list) if file_list else scan_image_folder(folder)
    if not paths:
        raise ValueError(f'No image found in "{file_list or folder}".')
    return paths


def _save_npz(path: str, **arrays: np.ndarray) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)  # atomic: a killed run never leaves a half-written part


def _load_parts(parts_dir: str) -> List[Tuple[str, dict]]:
    parts = []
    for name in sorted(os.listdir(parts_dir)):
        if name.startswith('part_') and name.endswith('.npz'):
            with np.load(osp.join(parts_dir, name), allow_pickle=False) as z:
                parts.append((name, {k: z[k] for k in z.files}))
    return parts


def _val_index(scorer: Scorer, val: str, val_list: Optional[str], out: str, args: dict,
               progress: bool) -> Tuple[List[str], np.ndarray, Optional[np.ndarray]]:
    """Hashes and (for feature dedup) features of the val set, cached in ``out``."""
    cache = osp.join(out, 'val_index.npz')
    val_paths = _list_images(val, val_list)
    need_feat = args['dedup'] in ('feature', 'both')
    if osp.isfile(cache):
        with np.load(cache, allow_pickle=False) as z:
            if list(z['paths']) == val_paths and (not need_feat or z['feats'].size):
                return val_paths, z['hashes'], (z['feats'] if need_feat else None)
    hashes = np.zeros(len(val_paths), dtype=np.uint64)
    feats: List[np.ndarray] = []
    for batch in _iterate(val, val_paths, args, True, 'val', progress):
        hashes[batch['index']] = batch['hash']
        if need_feat:
            _, f = _score(scorer, batch['img'], batch['ok'])
            if f is None:
                raise ValueError('--dedup feature needs a scorer that returns features.')
            f[~torch.from_numpy(batch['ok'])] = 0  # unreadable val images match nothing
            feats.append(f.numpy().astype(np.float16))
    feat_arr = np.concatenate(feats) if feats else np.zeros((0, ), np.float16)
    _save_npz(cache, paths=np.array(val_paths), hashes=hashes, feats=feat_arr)
    return val_paths, hashes, (feat_arr if need_feat else None)


def mine(scorer: Scorer,
         pool: str,
         val: str,
         topk: int,
         out: str,
         pool_list: Optional[str] = None,
         val_list: Optional[str] = None,
         batch_size: int = 32,
         num_workers: int = 0,
         save_every: int = 20,
         classes_per_image: int = 10,
         dedup: str = 'phash',
         phash_threshold: int = 4,
         cosine_threshold: float = 0.95,
         resize: int = 256,
         crop: int = 224,
         hash_backend: str = 'auto',
         class_names: Optional[Sequence[str]] = None,
         progress: bool = True,
         max_batches: Optional[int] = None) -> dict:
    """Score a pool with a teacher and keep the top-k images per class.

    Args:
        scorer (Scorer): RGB uint8 ``(B, 3, crop, crop)`` -> ``(logits (B, K), feats (B, D) or
            None)``.
        pool (str): Folder of candidate images (scanned recursively).
        val (str): Folder of validation images whose near-duplicates are removed.
        topk (int): Images kept per class.
        out (str): Output folder (also holds the resumable partial results).
        pool_list (str, optional): File list of the pool (relative to ``pool``).
        val_list (str, optional): File list of the val set (relative to ``val``).
        batch_size (int): Images per teacher forward. Defaults to 32.
        num_workers (int): DataLoader workers. Defaults to 0.
        save_every (int): Write partial results every this many batches. Defaults to 20.
        classes_per_image (int): Each image competes for its top-P classes (Yalniz et al. use
            P=10; not stated in the SSLD sources). Defaults to 10.
        dedup (str): 'phash', 'feature' (teacher-feature cosine), 'both' or 'none'.
        phash_threshold (int): Duplicate if the Hamming distance of the 64-bit pHashes is
            ``<=`` this (not stated in the sources; SSLD used SIFT). Defaults to 4.
        cosine_threshold (float): Duplicate if feature cosine ``>=`` this. Defaults to 0.95.
        resize (int): Shorter side before the centre crop. Defaults to 256.
        crop (int): Centre crop fed to the teacher. Defaults to 224.
        hash_backend (str): 'auto', 'imagehash' or 'numpy'. Defaults to 'auto'.
        class_names (Sequence[str], optional): Names for ``summary.json``.
        progress (bool): Show tqdm progress bars. Defaults to True.
        max_batches (int, optional): Stop after this many new batches (partial results are
            saved; a later call resumes). Defaults to None.

    Returns:
        dict: The summary (also written to ``out/summary.json``); ``complete`` is False when
        ``max_batches`` stopped the run early.
    """
    if dedup not in DEDUP_MODES:
        raise ValueError(f'dedup must be one of {DEDUP_MODES}, got {dedup!r}')
    for name, value in (('topk', topk), ('batch_size', batch_size), ('save_every', save_every),
                        ('classes_per_image', classes_per_image)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
    if not 0 <= phash_threshold <= 64:
        raise ValueError(f'phash_threshold must be in [0, 64], got {phash_threshold!r}')
    args = dict(batch_size=batch_size, num_workers=num_workers, resize=resize, crop=crop,
                hash_backend=hash_backend, dedup=dedup)
    parts_dir = osp.join(out, 'parts')
    os.makedirs(parts_dir, exist_ok=True)

    use_hash = dedup in ('phash', 'both')
    use_feat = dedup in ('feature', 'both')
    val_paths, val_hashes, val_feats = _val_index(scorer, val, val_list, out, args, progress)
    val_feats_t = torch.from_numpy(val_feats.astype(np.float32)) if use_feat else None

    pool_paths = _list_images(pool, pool_list)
    parts = _load_parts(parts_dir)
    done = set()
    for _, p in parts:
        done.update(p['paths'].tolist())
    todo = [p for p in pool_paths if p not in done]
    next_part = 1 + max([int(n[5:14]) for n, _ in parts], default=-1)

    buf: Dict[str, list] = {k: [] for k in ('paths', 'cls', 'score', 'ok', 'dup', 'dup_of',
                                            'dup_dist')}

    def flush() -> None:
        nonlocal next_part
        if not buf['paths']:
            return
        _save_npz(osp.join(parts_dir, f'part_{next_part:09d}.npz'),
                  paths=np.array(buf['paths']), cls=np.concatenate(buf['cls']),
                  score=np.concatenate(buf['score']), ok=np.concatenate(buf['ok']),
                  dup=np.concatenate(buf['dup']), dup_of=np.concatenate(buf['dup_of']),
                  dup_dist=np.concatenate(buf['dup_dist']))
        next_part += 1
        for v in buf.values():
            v.clear()

    complete = True
    for n_batch, batch in enumerate(_iterate(pool, todo, args, use_hash, 'pool', progress)):
        if max_batches is not None and n_batch >= max_batches:
            complete = False
            break
        ok = batch['ok']
        probs, feats = _score(scorer, batch['img'], ok)
        p = min(classes_per_image, probs.shape[1])
        score, cls = probs.topk(p, dim=1)
        dup = np.zeros(len(ok), dtype=bool)
        dup_of = np.full(len(ok), -1, dtype=np.int64)
        dup_dist = np.zeros(len(ok), dtype=np.float32)  # Hamming distance or cosine
        if use_hash and len(val_hashes):
            dist = hamming(batch['hash'], val_hashes)
            j = dist.argmin(1)
            d = dist[np.arange(len(j)), j]
            hit = ok & (d <= phash_threshold)
            dup |= hit
            dup_of[hit], dup_dist[hit] = j[hit], d[hit]
        if use_feat and val_feats_t is not None and len(val_feats_t):
            if feats is None:
                raise ValueError('dedup="feature" needs a scorer that returns features.')
            cos = feats @ val_feats_t.T
            c, j = cos.max(1)
            hit = ok & ~dup & (c >= cosine_threshold).numpy()
            dup |= hit
            dup_of[hit], dup_dist[hit] = j.numpy()[hit], c.numpy()[hit]
        for i in np.flatnonzero(~ok):
            warnings.warn(f'Skipping unreadable image "{todo[batch["index"][i]]}" '
                          f'({batch["error"][i]})')
        buf['paths'].extend(todo[i] for i in batch['index'])
        buf['cls'].append(cls.numpy().astype(np.int32))
        buf['score'].append(score.numpy().astype(np.float32))
        buf['ok'].append(ok)
        buf['dup'].append(dup)
        buf['dup_of'].append(dup_of)
        buf['dup_dist'].append(dup_dist)
        if (n_batch + 1) % save_every == 0:
            flush()
    flush()
    summary = _aggregate(parts_dir, pool_paths, val_paths, topk, out, class_names, dict(
        dedup=dedup, phash_threshold=phash_threshold, cosine_threshold=cosine_threshold,
        classes_per_image=classes_per_image, resize=resize, crop=crop))
    summary['complete'] = complete and summary['num_scored'] == len(pool_paths)
    with open(osp.join(out, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    return summary


def _prune(cls: np.ndarray, score: np.ndarray, pid: np.ndarray,
           topk: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the ``topk`` highest scores per class (ties: lower path id first)."""
    order = np.lexsort((pid, -score, cls))
    cls, score, pid = cls[order], score[order], pid[order]
    starts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
    rank = np.arange(len(cls)) - np.repeat(starts, np.diff(np.r_[starts, len(cls)]))
    keep = rank < topk
    return cls[keep], score[keep], pid[keep]


def _aggregate(parts_dir: str, pool_paths: List[str], val_paths: List[str], topk: int,
               out: str, class_names: Optional[Sequence[str]], options: dict) -> dict:
    pid_of = {p: i for i, p in enumerate(pool_paths)}
    cls_all = np.zeros(0, np.int64)
    score_all = np.zeros(0, np.float32)
    pid_all = np.zeros(0, np.int64)
    top1: List[np.ndarray] = []
    seen = set()
    unreadable: List[str] = []
    dups: List[dict] = []
    for _, part in _load_parts(parts_dir):
        paths = part['paths'].tolist()
        ids = np.array([pid_of.get(p, -1) for p in paths], dtype=np.int64)
        fresh = np.array([i >= 0 and i not in seen for i in ids.tolist()], dtype=bool)
        seen.update(ids[fresh].tolist())
        unreadable += [paths[i] for i in np.flatnonzero(fresh & ~part['ok'])]
        for i in np.flatnonzero(fresh & part['dup']):
            dups.append(dict(path=paths[i], val=val_paths[int(part['dup_of'][i])],
                             distance=float(part['dup_dist'][i])))
        use = fresh & part['ok'] & ~part['dup']
        top1.append(part['score'][use, 0])
        p = part['cls'].shape[1]
        cls_all = np.r_[cls_all, part['cls'][use].reshape(-1)]
        score_all = np.r_[score_all, part['score'][use].reshape(-1)]
        pid_all = np.r_[pid_all, np.repeat(ids[use], p)]
        if len(cls_all) > 1_000_000:
            cls_all, score_all, pid_all = _prune(cls_all, score_all, pid_all, topk)
    cls_all, score_all, pid_all = _prune(cls_all, score_all, pid_all, topk)

    selected = sorted({pool_paths[i] for i in pid_all.tolist()})
    with open(osp.join(out, 'filelist.txt'), 'w') as f:
        f.writelines(p + '\n' for p in selected)
    with open(osp.join(out, 'selection.csv'), 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['path', 'class', 'score'])
        for c, s, i in zip(cls_all.tolist(), score_all.tolist(), pid_all.tolist()):
            w.writerow([pool_paths[i], c, f'{s:.6f}'])

    def name(c: int) -> str:
        return str(class_names[c]) if class_names is not None else str(c)

    per_class = {}
    for c in np.unique(cls_all).tolist():
        s = score_all[cls_all == c]
        per_class[name(c)] = dict(count=int(len(s)), min_score=float(s.min()),
                                  mean_score=float(s.mean()), max_score=float(s.max()))
    top1_all = np.concatenate(top1) if top1 else np.zeros(0, np.float32)
    _histogram(top1_all, score_all, osp.join(out, 'score_hist.png'))
    return dict(
        num_pool=len(pool_paths), num_scored=len(seen), num_unreadable=len(unreadable),
        unreadable=unreadable[:1000], num_val=len(val_paths),
        duplicates_removed=len(dups), duplicates=dups[:10000], topk=topk,
        num_selected_images=len(selected), num_selected_entries=int(len(cls_all)),
        per_class=per_class, options=options)


def _histogram(top1: np.ndarray, selected: np.ndarray, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 51)
    ax.hist(top1, bins=bins, alpha=0.6, label=f'pool top-1 score (n={len(top1)})')
    ax.hist(selected, bins=bins, alpha=0.6, label=f'selected class score (n={len(selected)})')
    ax.set_xlabel('teacher softmax score')
    ax.set_ylabel('images')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ----------------------------------------------------------------------------- teachers
def build_scorer(config: str, checkpoint: Optional[str] = None, device: str = 'cpu',
                 cfg_options: Optional[dict] = None) -> Tuple[Scorer, Optional[List[str]]]:
    """Build a scorer from a config (classifier, teacher adapter or distiller).

    Args:
        config (str): Config path.
        checkpoint (str, optional): Weights for the classifier / teacher.
        device (str): Torch device. Defaults to 'cpu'.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        Tuple[Scorer, Optional[List[str]]]: The scorer and class names if known.
    """
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    from mmscalekd.registry import MODELS
    from mmscalekd.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = cfg.model
    preproc = model_cfg.get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    mean = torch.tensor(preproc.get('mean', _IMAGENET_MEAN), dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(preproc.get('std', _IMAGENET_STD), dtype=torch.float32).view(1, -1, 1, 1)
    if 'teacher' in model_cfg and 'student' in model_cfg:  # a distiller: use its teacher
        model_cfg = model_cfg.teacher
    model = MODELS.build(model_cfg)
    if hasattr(model, 'init_weights'):
        model.init_weights()
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.to(device).eval()
    classes = None
    meta = getattr(model, 'dataset_meta', None) or {}
    if meta.get('classes'):
        classes = list(meta['classes'])
    mean, std = mean.to(device), std.to(device)

    if hasattr(model, 'forward_targets'):  # a teacher adapter owns its normalisation
        if hasattr(model, 'set_student_normalization'):
            model.set_student_normalization(mean.flatten(), std.flatten())

        def teacher_scorer(img: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
            x = (img.to(device).float() - mean) / std
            targets = model.forward_targets(x)
            feat = targets.feature
            return targets.logits, feat.mean((2, 3)) if feat.dim() == 4 else feat
        return teacher_scorer, classes

    if hasattr(model, 'data_preprocessor') and hasattr(model, 'extract_feat'):

        def classifier_scorer(img: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
            # the preprocessor expects what LoadImageFromFile gives: BGR
            x = model.data_preprocessor(dict(inputs=img.flip(1).to(device)), False)['inputs']
            feats = model.extract_feat(x)
            logits = model.head(feats)
            pre = model.head.pre_logits(feats) if hasattr(model.head, 'pre_logits') else feats
            pre = pre[-1] if isinstance(pre, (tuple, list)) else pre
            return logits, pre.mean((2, 3)) if pre.dim() == 4 else pre
        return classifier_scorer, classes
    raise TypeError(f'Cannot score with a {type(model).__name__}: expected a classifier '
                    '(ImageClassifier), a teacher adapter (forward_targets) or a distiller.')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config of a classifier, teacher adapter or distiller')
    parser.add_argument('--checkpoint', default=None, help='weights of the classifier/teacher')
    parser.add_argument('--pool', required=True, help='folder of candidate images')
    parser.add_argument('--pool-list', default=None, help='file list of the pool (optional)')
    parser.add_argument('--val', required=True, help='validation folder to de-duplicate against')
    parser.add_argument('--val-list', default=None, help='file list of the val set (optional)')
    parser.add_argument('--topk', type=int, required=True, help='images kept per class')
    parser.add_argument('--out', required=True, help='output folder (resumable)')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--save-every', type=int, default=20,
                        help='write partial results every N batches')
    parser.add_argument('--classes-per-image', type=int, default=10,
                        help='each image competes for its top-P classes (Yalniz et al.: 10)')
    parser.add_argument('--dedup', choices=DEDUP_MODES, default='phash')
    parser.add_argument('--phash-threshold', type=int, default=4,
                        help='duplicate if pHash Hamming distance <= this')
    parser.add_argument('--cosine-threshold', type=float, default=0.95,
                        help='duplicate if teacher-feature cosine >= this')
    parser.add_argument('--resize', type=int, default=256)
    parser.add_argument('--crop', type=int, default=224)
    parser.add_argument('--hash-backend', choices=('auto', 'imagehash', 'numpy'), default='auto')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='key=value overrides of the config')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    scorer, classes = build_scorer(args.config, args.checkpoint, args.device, args.cfg_options)
    summary = mine(scorer, args.pool, args.val, args.topk, args.out, pool_list=args.pool_list,
                   val_list=args.val_list, batch_size=args.batch_size,
                   num_workers=args.workers, save_every=args.save_every,
                   classes_per_image=args.classes_per_image, dedup=args.dedup,
                   phash_threshold=args.phash_threshold,
                   cosine_threshold=args.cosine_threshold, resize=args.resize,
                   crop=args.crop, hash_backend=args.hash_backend, class_names=classes,
                   progress=not args.no_progress)
    print(f'selected {summary["num_selected_images"]} images '
          f'({summary["duplicates_removed"]} val near-duplicates removed, '
          f'{summary["num_unreadable"]} unreadable) -> {osp.join(args.out, "filelist.txt")}')
    return summary


if __name__ == '__main__':
    main()
