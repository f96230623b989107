"""Mining a pool of unlabeled images for SSLD: score, de-duplicate, keep the top-k per class.

Layout of the output folder ``OUT`` (every file written atomically):

* ``manifest.json``: the fingerprint of the run -- the teacher's weights (SHA-256 of its state
  dict), its config, the pipeline and normalisation, the precision, the validation files and
  the options that the parts depend on (``classes_per_image``, ``dedup`` and its thresholds).
  A run whose fingerprint differs stops instead of mixing its results with the stored ones.
* ``parts/part-rRRRRR-SSSSSSSS.npz``: resumable results of rank ``R`` (paths, top-P classes and
  scores, readability, duplicate flags), each stamped with the fingerprint's digest.
* ``val_index.npz``: the validation hashes and features (computed once, sharded over ranks).
* ``lists/{pool,val}.txt``: the scanned file lists (when no list was given).
* Outputs of a complete run: ``filelist.txt`` (the selected images, one per line, the input of
  ``UnlabeledImageFolder(ann_file=...)``), ``selection.csv`` (path, class, score),
  ``duplicates.csv``, ``unreadable.txt``, ``score_hist.png`` and, last, ``summary.json``.
  Existing outputs made with other options are replaced only with ``force=True``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import os.path as osp
import shutil
import sys
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from mmscalekd.datasets.unlabeled_image_folder import read_file_list, scan_image_folder

from .dedup import HASH_FUNCTION, NearDuplicateIndex
from .distributed import DistContext
from .io import (
    atomic_save_npz,
    atomic_write,
    atomic_write_json,
    remove_stale_temporaries,
    write_file_list,
)
from .options import MiningOptions
from .progress import Progress
from .scorer import Scorer
from .stream import ImageStream, iterate

#: Version of the part/manifest layout; parts of another version are never mixed.
FORMAT_VERSION = 2
OUTPUTS = ('summary.json', 'filelist.txt', 'selection.csv', 'duplicates.csv', 'unreadable.txt',
           'score_hist.png')
_MAX_WARNINGS = 20


class MiningStateError(RuntimeError):
    """The output folder holds results made with other options or inputs."""


# ----------------------------------------------------------------------------- helpers
def _log(msg: str, dist: DistContext, all_ranks: bool = False) -> None:
    if dist.is_main or all_ranks:
        prefix = f'[mining rank {dist.rank}] ' if dist.world_size > 1 else '[mining] '
        print(prefix + msg, file=sys.stderr, flush=True)


def path_keys(paths: Sequence[str]) -> np.ndarray:
    """64-bit keys of relative paths (BLAKE2b), to find done images without keeping strings.

    Two different paths share a key with probability about ``n**2 / 2**65`` (5e-6 for 14 M
    images); :func:`mine` checks that the pool's keys are distinct.
    """
    out = np.empty(len(paths), dtype=np.uint64)
    for i, p in enumerate(paths):
        digest = hashlib.blake2b(p.encode('utf-8', 'surrogatepass'), digest_size=8).digest()
        out[i] = int.from_bytes(digest, 'little')
    return out


def _encode_paths(paths: Sequence[str]) -> np.ndarray:
    return np.frombuffer(json.dumps(list(paths)).encode('ascii'), dtype=np.uint8)


def _decode_paths(blob: np.ndarray) -> List[str]:
    return json.loads(blob.tobytes().decode('ascii'))


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _flatten(obj: Any, prefix: str = '') -> Dict[str, Any]:
    if isinstance(obj, dict):
        flat: Dict[str, Any] = {}
        for k, v in obj.items():
            flat.update(_flatten(v, f'{prefix}{k}.'))
        return flat or {prefix[:-1]: {}}
    return {prefix[:-1]: obj}


def _differences(old: dict, new: dict, limit: int = 8) -> str:
    a, b = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, '<absent>') != b.get(key, '<absent>'):
            def short(v: Any) -> str:
                text = json.dumps(v) if not isinstance(v, str) else v
                return text if len(text) <= 70 else text[:67] + '...'
            lines.append(f'  {key}: {short(a.get(key, "<absent>"))} -> '
                         f'{short(b.get(key, "<absent>"))}')
    more = f'\n  ... and {len(lines) - limit} more' if len(lines) > limit else ''
    return '\n'.join(lines[:limit]) + more


def _list_images(folder: str, file_list: Optional[str], name: str) -> Tuple[List[str], bool]:
    if file_list:
        paths = read_file_list(file_list, folder)
    else:
        paths = scan_image_folder(folder)
    if not paths:
        raise ValueError(f'No image found in the {name} ("{file_list or folder}").')
    if len(set(paths)) != len(paths):
        seen, dups = set(), []
        for p in paths:
            if p in seen:
                dups.append(p)
            seen.add(p)
        raise ValueError(f'the {name} list names {len(dups)} file(s) twice, e.g. {dups[:3]}; '
                         'remove the repeated lines')
    return paths, file_list is None


def run_fingerprint(scorer: Scorer, options: MiningOptions, val_paths: Sequence[str]) -> dict:
    """What the parts of a run depend on (see the module docstring).

    Args:
        scorer (Scorer): The scorer (its own fingerprint is included).
        options (MiningOptions): The options.
        val_paths (Sequence[str]): The validation images.

    Returns:
        dict: JSON-able fingerprint.
    """
    import imagehash
    return dict(
        format=FORMAT_VERSION,
        scorer=scorer.fingerprint(),
        pool_root=osp.realpath(options.pool),
        val=dict(root=osp.realpath(options.val), count=len(val_paths),
                 sha256=hashlib.sha256('\n'.join(val_paths).encode(
                     'utf-8', 'surrogatepass')).hexdigest()),
        hash_function=(f'{HASH_FUNCTION}, imagehash {imagehash.__version__}'
                       if options.uses_phash else None),
        **options.part_options())


# ----------------------------------------------------------------------------- the folder
def _part_files(parts_dir: str) -> List[str]:
    if not osp.isdir(parts_dir):
        return []
    return sorted(n for n in os.listdir(parts_dir) if n.endswith('.npz') and not
                  n.startswith('.'))


def _prepare_out(options: MiningOptions, fingerprint: dict, dist: DistContext) -> dict:
    """Rank 0: clean leftovers, refuse or (force) clear results made otherwise, write manifest."""
    out = options.out
    parts_dir = osp.join(out, 'parts')
    removed = []
    for folder in (out, parts_dir, osp.join(out, 'val_index'), osp.join(out, 'lists')):
        removed += remove_stale_temporaries(folder)
    if removed:
        _log(f'removed {len(removed)} temporary file(s) left by a killed run: '
             f'{[osp.relpath(p, out) for p in removed[:5]]}', dist)
    digest = _digest(fingerprint)
    manifest_path = osp.join(out, 'manifest.json')
    manifest = None
    if osp.isfile(manifest_path):
        with open(manifest_path, encoding='utf-8') as f:
            manifest = json.load(f)
    parts = _part_files(parts_dir)
    stale = None
    if manifest is not None and manifest.get('digest') != digest:
        diff = _differences(manifest.get('fingerprint', {}), fingerprint)
        stale = (f'{len(parts)} resumable part(s) in {parts_dir!r} were made with other '
                 f'options or inputs:\n{diff}')
    elif manifest is None and (parts or osp.isfile(osp.join(out, 'val_index.npz'))):
        stale = (f'{out!r} holds mining parts without a manifest.json (from an older mining '
                 'tool or another program), so what made them cannot be checked')
    summary_path = osp.join(out, 'summary.json')
    old_outputs = None
    if stale is None and osp.isfile(summary_path):
        with open(summary_path, encoding='utf-8') as f:
            old = json.load(f)
        new_merge = options.merge_options()
        if old.get('fingerprint_digest') != digest or old.get('merge_options') != new_merge:
            old_outputs = (f'{out!r} already holds a complete selection made with other '
                           'options:\n' + _differences(
                               dict(fingerprint=old.get('fingerprint_digest'),
                                    **(old.get('merge_options') or {})),
                               dict(fingerprint=digest, **new_merge)))
    if stale and not options.force:
        raise MiningStateError(
            f'{stale}\nNothing was changed. Rerun with --force (force=True) to discard them '
            'and score the pool again with the new options, or give another --out.')
    if old_outputs and not options.force:
        raise MiningStateError(
            f'{old_outputs}\nNothing was changed. Rerun with --force (force=True) to replace '
            'the selection (the stored scores are reused, nothing is scored again), or give '
            'another --out.')
    if stale:
        _log(f'--force: removing the results made with other options ({len(parts)} '
             'part(s), the validation index and the outputs)', dist)
        shutil.rmtree(parts_dir, ignore_errors=True)
        shutil.rmtree(osp.join(out, 'val_index'), ignore_errors=True)
        for name in ('val_index.npz', 'manifest.json', 'progress.json') + OUTPUTS:
            if osp.isfile(osp.join(out, name)):
                os.remove(osp.join(out, name))
    elif old_outputs:
        _log('--force: the existing selection (filelist.txt, selection.csv, ...) will be '
             'replaced; the stored scores are reused', dist)
        os.remove(summary_path)  # a killed rewrite must not look complete
    os.makedirs(parts_dir, exist_ok=True)
    if manifest is None or stale:
        atomic_write_json(manifest_path, dict(format=FORMAT_VERSION, digest=digest,
                                              fingerprint=fingerprint,
                                              created=time.strftime('%Y-%m-%d %H:%M:%S')))
    return dict(digest=digest, removed=removed)


def _setup(scorer: Scorer, options: MiningOptions,
           dist: DistContext) -> Tuple[List[str], List[str], dict]:
    """Rank 0 lists the images, checks ``OUT`` and stores scanned lists; all ranks read them.

    Returns:
        Tuple[List[str], List[str], dict]: Pool paths, validation paths and ``dict(digest,
        fingerprint)``.
    """
    lists_dir = osp.join(options.out, 'lists')
    mine: Dict[str, List[str]] = {}

    def setup() -> dict:
        pool, pool_scanned = _list_images(options.pool, options.pool_list, 'pool')
        val, val_scanned = _list_images(options.val, options.val_list, 'val')
        fingerprint = run_fingerprint(scorer, options, val)
        info = _prepare_out(options, fingerprint, dist)
        files = {}
        for name, paths, scanned, given in (('pool', pool, pool_scanned, options.pool_list),
                                            ('val', val, val_scanned, options.val_list)):
            files[name] = osp.join(lists_dir, f'{name}.txt') if scanned else given
            if scanned:
                write_file_list(files[name], paths)
        mine.update(pool=pool, val=val)
        return dict(info, files=files, fingerprint=fingerprint)

    info = dist.on_main(setup)
    if dist.is_main:
        return mine['pool'], mine['val'], info
    pool, _ = _list_images(options.pool, info['files']['pool'], 'pool')
    val, _ = _list_images(options.val, info['files']['val'], 'val')
    return pool, val, info


# ----------------------------------------------------------------------------- val index
def _val_index(scorer: Scorer, options: MiningOptions, val_paths: List[str], digest: str,
               dist: DistContext, device: torch.device) -> Tuple[NearDuplicateIndex, dict]:
    out = options.out
    path = osp.join(out, 'val_index.npz')
    stats = dict(seconds=0.0, images=0)

    def load() -> Optional[dict]:
        if not osp.isfile(path):
            return None
        with np.load(path, allow_pickle=False) as z:
            if str(z['digest']) != digest:
                return None
            return {k: z[k] for k in z.files}

    if options.dedup == 'none':
        return NearDuplicateIndex(), stats
    data = load()
    if data is None:
        shard_dir = osp.join(out, 'val_index')
        ids = np.arange(dist.rank, len(val_paths), dist.world_size)
        t0 = time.perf_counter()
        hashes = np.zeros(len(ids), np.uint64)
        valid = np.zeros(len(ids), bool)
        feats: Optional[np.ndarray] = None
        stream = ImageStream(options.val, [val_paths[i] for i in ids], scorer.pipeline,
                             with_hash=options.uses_phash, with_inputs=options.uses_features)
        progress = Progress(len(ids), f'validation index (rank {dist.rank})',
                            options.progress_interval_s, options.progress and dist.is_main)

        def compute() -> None:
            nonlocal feats
            for batch in iterate(stream, options.batch_size, options.num_workers):
                idx = batch['index']
                hashes[idx], valid[idx] = batch['hash'], batch['ok']
                if options.uses_features and batch['inputs']:
                    _, f = scorer.score(batch['inputs'])
                    if f is None:
                        raise ValueError("dedup='feature'/'both' needs a scorer that returns "
                                         'features')
                    if feats is None:
                        feats = np.zeros((len(ids), f.shape[1]), np.float16)
                    feats[idx[batch['ok']]] = f.numpy().astype(np.float16)
                progress.update(len(idx))
            atomic_save_npz(osp.join(shard_dir, f'rank{dist.rank:05d}-of-{dist.world_size}.npz'),
                            ids=ids, hashes=hashes, valid=valid,
                            feats=feats if feats is not None else np.zeros((0, 0), np.float16))

        dist.all_ok(compute)
        stats.update(seconds=time.perf_counter() - t0, images=len(ids))

        def merge() -> None:
            n = len(val_paths)
            all_hashes, all_valid = np.zeros(n, np.uint64), np.zeros(n, bool)
            all_feats = None
            for r in range(dist.world_size):
                shard = osp.join(shard_dir, f'rank{r:05d}-of-{dist.world_size}.npz')
                with np.load(shard, allow_pickle=False) as z:
                    all_hashes[z['ids']], all_valid[z['ids']] = z['hashes'], z['valid']
                    if z['feats'].size:
                        if all_feats is None:
                            all_feats = np.zeros((n, z['feats'].shape[1]), np.float16)
                        all_feats[z['ids']] = z['feats']
            atomic_save_npz(path, digest=np.array(digest), hashes=all_hashes, valid=all_valid,
                            feats=all_feats if all_feats is not None
                            else np.zeros((0, 0), np.float16))
            shutil.rmtree(shard_dir, ignore_errors=True)

        dist.on_main(merge)
        data = load()
        if data is None:
            raise RuntimeError(f'{path} was not written; is {out!r} on a file system that '
                               'every mining process shares?')
    else:
        _log(f'reusing the validation index {path}', dist)
    if options.uses_features and not data['feats'].size:
        raise ValueError("dedup='feature'/'both' needs features in the validation index")
    index = NearDuplicateIndex(
        hashes=data['hashes'] if options.uses_phash else None,
        features=data['feats'] if options.uses_features else None,
        valid=data['valid'], phash_threshold=options.phash_threshold,
        cosine_threshold=options.cosine_threshold, device=device)
    _log(f'validation index: {int(data["valid"].sum()):,} of {len(val_paths):,} images readable',
         dist)
    return index, stats


# ----------------------------------------------------------------------------- scoring
def _done_keys(parts_dir: str, digest: str) -> np.ndarray:
    keys = []
    for name in _part_files(parts_dir):
        with np.load(osp.join(parts_dir, name), allow_pickle=False) as z:
            if str(z['digest']) != digest:
                raise MiningStateError(
                    f'part {name} in {parts_dir!r} was made with other options than '
                    'manifest.json records; rerun with --force to discard the parts.')
            keys.append(z['key'])
    return np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.uint64)


def _next_seq(parts_dir: str, rank: int) -> int:
    prefix = f'part-r{rank:05d}-'
    seqs = [int(n[len(prefix):-4]) for n in _part_files(parts_dir)
            if n.startswith(prefix) and n[len(prefix):-4].isdigit()]
    return max(seqs, default=0) + 1


def _score_shard(scorer: Scorer, options: MiningOptions, shard: List[str],
                 index: NearDuplicateIndex, digest: str, dist: DistContext,
                 total_todo: int) -> dict:
    parts_dir = osp.join(options.out, 'parts')
    seq = _next_seq(parts_dir, dist.rank)
    buf: Dict[str, list] = {k: [] for k in ('paths', 'cls', 'score', 'ok', 'dup', 'dup_of',
                                            'dup_dist', 'dup_kind')}
    stats = dict(images=0, batches=0, seconds=0.0, dedup_seconds=0.0, complete=True,
                 unreadable_warned=0)

    def flush() -> None:
        nonlocal seq
        if not buf['paths']:
            return
        atomic_save_npz(osp.join(parts_dir, f'part-r{dist.rank:05d}-{seq:08d}.npz'),
                        digest=np.array(digest), key=path_keys(buf['paths']),
                        paths=_encode_paths(buf['paths']),
                        cls=np.concatenate(buf['cls']), score=np.concatenate(buf['score']),
                        ok=np.concatenate(buf['ok']), dup=np.concatenate(buf['dup']),
                        dup_of=np.concatenate(buf['dup_of']),
                        dup_dist=np.concatenate(buf['dup_dist']),
                        dup_kind=np.concatenate(buf['dup_kind']))
        seq += 1
        for v in buf.values():
            v.clear()

    stream = ImageStream(options.pool, shard, scorer.pipeline, with_hash=options.uses_phash)
    desc = (f'pool, rank {dist.rank} of {dist.world_size} ({len(shard):,} of {total_todo:,} '
            'images to score)' if dist.world_size > 1 else 'pool')
    progress = Progress(len(shard), desc, options.progress_interval_s,
                        options.progress and dist.is_main)
    p = options.classes_per_image
    t0 = time.perf_counter()
    for n_batch, batch in enumerate(iterate(stream, options.batch_size, options.num_workers)):
        if options.max_batches is not None and n_batch >= options.max_batches:
            stats['complete'] = False
            break
        ok = batch['ok']
        b = len(ok)
        cls = np.zeros((b, 0), np.int32)
        score = np.zeros((b, 0), np.float32)
        feats = None
        if batch['inputs']:
            probs, feats = scorer.score(batch['inputs'])
            k = min(p, probs.shape[1])
            s, c = probs.topk(k, dim=1)
            cls = np.zeros((b, k), np.int32)
            score = np.zeros((b, k), np.float32)
            cls[ok], score[ok] = c.numpy(), s.numpy()
        t_dedup = time.perf_counter()
        matches = index.query(
            hashes=batch['hash'][ok] if index.hashes is not None else None,
            features=feats if index.features is not None else None)
        stats['dedup_seconds'] += time.perf_counter() - t_dedup
        full = dict(dup=np.zeros(b, bool), dup_of=np.full(b, -1, np.int64),
                    dup_dist=np.zeros(b, np.float32), dup_kind=np.zeros(b, np.int8))
        if len(matches.dup):
            full['dup'][ok], full['dup_of'][ok] = matches.dup, matches.dup_of
            full['dup_dist'][ok], full['dup_kind'][ok] = matches.distance, matches.kind
        for i in np.flatnonzero(~ok):
            if stats['unreadable_warned'] < _MAX_WARNINGS:
                warnings.warn(f'Skipping unreadable image "{shard[batch["index"][i]]}" '
                              f'({batch["error"][i]})')
            elif stats['unreadable_warned'] == _MAX_WARNINGS:
                warnings.warn('further unreadable images are counted in summary.json and '
                              'listed in unreadable.txt')
            stats['unreadable_warned'] += 1
        buf['paths'].extend(shard[i] for i in batch['index'])
        if buf['cls'] and buf['cls'][0].shape[1] != cls.shape[1]:  # a batch without readable
            width = max(buf['cls'][0].shape[1], cls.shape[1])      # images has 0 columns
            cls = np.pad(cls, ((0, 0), (0, width - cls.shape[1])))
            score = np.pad(score, ((0, 0), (0, width - score.shape[1])))
            buf['cls'] = [np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in buf['cls']]
            buf['score'] = [np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in buf['score']]
        buf['cls'].append(cls)
        buf['score'].append(score)
        buf['ok'].append(ok)
        for key, value in full.items():
            buf[key].append(value)
        stats['images'] += b
        stats['batches'] += 1
        progress.update(b)
        if (n_batch + 1) % options.save_every == 0:
            flush()
    flush()
    stats['seconds'] = time.perf_counter() - t0
    return stats


# ----------------------------------------------------------------------------- merge
def iter_parts(out: str) -> Any:
    """Yield every stored part of ``out`` as a dict of arrays (``paths`` decoded).

    Args:
        out (str): A mining output folder.

    Yields:
        dict: ``paths`` (list of str), ``key``, ``cls`` ``(B, P)``, ``score`` ``(B, P)``,
        ``ok``, ``dup``, ``dup_of``, ``dup_dist``, ``dup_kind``, ``digest``.
    """
    parts_dir = osp.join(out, 'parts')
    for name in _part_files(parts_dir):
        with np.load(osp.join(parts_dir, name), allow_pickle=False) as z:
            part = {k: z[k] for k in z.files}
        part['paths'] = _decode_paths(part['paths'])
        yield part


def load_scores(out: str) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Per-image top-P classes and softmax scores stored in ``out`` (readable images only).

    Args:
        out (str): A mining output folder.

    Returns:
        Dict[str, Tuple[np.ndarray, np.ndarray]]: ``path -> (classes (P,), scores (P,))``.
    """
    scores = {}
    for part in iter_parts(out):
        for i, path in enumerate(part['paths']):
            if part['ok'][i] and path not in scores:
                scores[path] = (part['cls'][i], part['score'][i])
    return scores


def _prune(cls: np.ndarray, score: np.ndarray, pid: np.ndarray,
           topk: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the ``topk`` highest scores per class (ties: the lower pool index first)."""
    order = np.lexsort((pid, -score, cls))
    cls, score, pid = cls[order], score[order], pid[order]
    starts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]]) if len(cls) else np.zeros(0, int)
    rank = np.arange(len(cls)) - np.repeat(starts, np.diff(np.r_[starts, len(cls)]))
    keep = rank < topk
    return cls[keep], score[keep], pid[keep]


def _merge(options: MiningOptions, pool_paths: List[str], val_paths: List[str], digest: str,
           fingerprint: dict, classes: Optional[List[str]], throughput: dict,
           pool_keys: np.ndarray) -> dict:
    out = options.out
    n = len(pool_paths)
    order = np.argsort(pool_keys, kind='stable')
    sorted_keys = pool_keys[order]
    seen = np.zeros(n, bool)
    top1 = np.full(n, np.nan, np.float32)
    cls_all, score_all, pid_all = (np.zeros(0, np.int64), np.zeros(0, np.float32),
                                   np.zeros(0, np.int64))
    unreadable: List[int] = []
    dups: List[Tuple[int, int, int, float]] = []
    topk = options.topk
    for part in iter_parts(out):
        pos = np.searchsorted(sorted_keys, part['key'])
        pos = np.minimum(pos, n - 1)
        known = sorted_keys[pos] == part['key']
        pid = np.where(known, order[pos], -1)
        fresh = known.copy()
        fresh[known] = ~seen[pid[known]]
        _, first = np.unique(pid, return_index=True)  # a path twice in one part: first wins
        once = np.zeros(len(pid), bool)
        once[first] = True
        fresh &= once
        seen[pid[fresh]] = True
        unreadable += pid[fresh & ~part['ok']].tolist()
        for i in np.flatnonzero(fresh & part['dup']):
            dups.append((int(pid[i]), int(part['dup_of'][i]), int(part['dup_kind'][i]),
                         float(part['dup_dist'][i])))
        use = fresh & part['ok'] & ~part['dup']
        if not use.any() or part['cls'].shape[1] == 0:
            continue
        top1[pid[use]] = part['score'][use, 0]
        width = part['cls'].shape[1]
        cls_all = np.r_[cls_all, part['cls'][use].reshape(-1)]
        score_all = np.r_[score_all, part['score'][use].reshape(-1)]
        pid_all = np.r_[pid_all, np.repeat(pid[use], width)]
        if len(cls_all) > 2_000_000:
            cls_all, score_all, pid_all = _prune(cls_all, score_all, pid_all, topk)
    cls_all, score_all, pid_all = _prune(cls_all, score_all, pid_all, topk)
    num_scored = int(seen.sum())
    complete = num_scored == n
    result = dict(complete=complete, num_pool=n, num_scored=num_scored,
                  num_unreadable=len(unreadable), duplicates_removed=len(dups))
    if not complete:
        atomic_write_json(osp.join(out, 'progress.json'),
                          dict(result, fingerprint_digest=digest, throughput=throughput))
        return dict(result, throughput=throughput)

    def name(c: int) -> str:
        return str(classes[c]) if classes is not None and c < len(classes) else str(c)

    selected = sorted(set(pid_all.tolist()))
    write_file_list(osp.join(out, 'filelist.txt'), [pool_paths[i] for i in selected])

    def write_csv(path: str, header: List[str], rows: Any) -> None:
        def write(f: io.BufferedWriter) -> None:
            text = io.TextIOWrapper(f, encoding='utf-8', errors='surrogateescape', newline='')
            w = csv.writer(text)
            w.writerow(header)
            w.writerows(rows)
            text.flush()
            text.detach()
        atomic_write(path, write)

    sel_order = np.lexsort((pid_all, -score_all, cls_all))
    write_csv(osp.join(out, 'selection.csv'), ['path', 'class', 'class_name', 'score'],
              ([pool_paths[pid_all[i]], int(cls_all[i]), name(int(cls_all[i])),
                f'{score_all[i]:.6f}'] for i in sel_order))
    kinds = {1: 'phash', 2: 'feature'}
    write_csv(osp.join(out, 'duplicates.csv'), ['path', 'val_path', 'match', 'distance'],
              ([pool_paths[p], val_paths[v], kinds.get(k, '?'), f'{d:g}']
               for p, v, k, d in sorted(dups)))
    write_file_list(osp.join(out, 'unreadable.txt'), [pool_paths[i] for i in sorted(unreadable)])
    per_class = {}
    for c in np.unique(cls_all).tolist():
        s = score_all[cls_all == c]
        per_class[name(c)] = dict(count=int(len(s)), min_score=float(s.min()),
                                  mean_score=float(s.mean()), max_score=float(s.max()))
    _histogram(top1[~np.isnan(top1)], score_all, osp.join(out, 'score_hist.png'))
    summary = dict(
        result, num_val=len(val_paths), topk=topk,
        num_selected_images=len(selected), num_selected_entries=int(len(cls_all)),
        unreadable=[pool_paths[i] for i in sorted(unreadable)[:1000]],
        duplicates=[dict(path=pool_paths[p], val=val_paths[v], match=kinds.get(k, '?'),
                         distance=d) for p, v, k, d in sorted(dups)[:10000]],
        per_class=per_class, throughput=throughput,
        merge_options=options.merge_options(), options=options.to_dict(),
        fingerprint_digest=digest, fingerprint=fingerprint)
    if osp.isfile(osp.join(out, 'progress.json')):
        os.remove(osp.join(out, 'progress.json'))
    atomic_write_json(osp.join(out, 'summary.json'), summary)
    return summary


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
    atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=80))
    plt.close(fig)


# ----------------------------------------------------------------------------- entry point
def mine(scorer: Scorer, options: MiningOptions, dist: Optional[DistContext] = None,
         device: Optional[torch.device] = None) -> dict:
    """Score the pool with the teacher, remove validation near-duplicates, keep the top-k.

    Resumable: every ``save_every`` batches each process writes a part; a restarted run
    scores only the images that no part holds. Sharded: with a ``dist`` of ``W`` processes,
    process ``r`` scores every ``W``-th image of what is left (its own parts), and rank 0
    merges once all are done; the selection does not depend on ``W``.

    Args:
        scorer (Scorer): E.g. :class:`~mmscalekd.ssld.mining.TeacherScorer`.
        options (MiningOptions): What to mine.
        dist (DistContext, optional): From :func:`~mmscalekd.ssld.mining.init_distributed`.
            Defaults to one process.
        device (torch.device, optional): Where the feature cosines are computed. Defaults to
            the scorer's device (``scorer.device``), else the CPU.

    Returns:
        dict: The summary (written to ``OUT/summary.json`` when the run is complete;
        ``complete`` is False when ``max_batches`` stopped it early).

    Raises:
        MiningStateError: ``OUT`` holds parts or outputs made with other options or inputs
            and ``options.force`` is False.
    """
    dist = dist or DistContext()
    device = device or getattr(scorer, 'device', None) or torch.device('cpu')
    t_start = time.perf_counter()
    os.makedirs(options.out, exist_ok=True)
    pool_paths, val_paths, info = _setup(scorer, options, dist)
    digest, fingerprint = info['digest'], info['fingerprint']
    pool_keys = path_keys(pool_paths)
    if len(np.unique(pool_keys)) != len(pool_keys):
        raise RuntimeError('two pool paths share a 64-bit key (a BLAKE2b collision); rename '
                           'one of the files or split the pool')

    index, val_stats = _val_index(scorer, options, val_paths, digest, dist, device)
    parts_dir = osp.join(options.out, 'parts')
    done = dist.all_ok(lambda: _done_keys(parts_dir, digest))
    dist.barrier()  # every rank has listed the parts before any rank writes new ones
    todo = [p for p, k in zip(pool_paths, np.isin(pool_keys, done)) if not k]
    shard = todo[dist.rank::dist.world_size]
    _log(f'{len(pool_paths):,} pool images, {len(pool_paths) - len(todo):,} already scored, '
         f'{len(todo):,} to score' + (f' over {dist.world_size} processes'
                                      if dist.world_size > 1 else ''), dist)
    stats = dist.all_ok(lambda: _score_shard(scorer, options, shard, index, digest, dist,
                                             len(todo)))
    all_stats = dist.all_gather(stats)
    wall = max(s['seconds'] for s in all_stats)
    scored = sum(s['images'] for s in all_stats)
    dedup_s = sum(s['dedup_seconds'] for s in all_stats)
    throughput = dict(
        world_size=dist.world_size, images_scored_this_run=scored,
        scoring_wall_s=round(wall, 3),
        images_per_s=round(scored / wall, 2) if wall > 0 else None,
        images_per_s_per_process=[round(s['images'] / s['seconds'], 2) if s['seconds'] > 0
                                  else None for s in all_stats],
        dedup_images_per_s_per_process=round(scored / dedup_s, 1) if dedup_s > 0 else None,
        val_index_s=round(val_stats['seconds'], 3),
        total_wall_s=None)

    def merge() -> dict:
        throughput['total_wall_s'] = round(time.perf_counter() - t_start, 3)
        return _merge(options, pool_paths, val_paths, digest, fingerprint, scorer.classes,
                      throughput, pool_keys)

    summary = dist.on_main(merge)
    if summary['complete']:
        _log(f'selected {summary["num_selected_images"]:,} images '
             f'({summary["duplicates_removed"]:,} validation near-duplicates removed, '
             f'{summary["num_unreadable"]:,} unreadable) -> '
             f'{osp.join(options.out, "filelist.txt")}', dist)
    else:
        _log(f'stopped early: {summary["num_scored"]:,} of {summary["num_pool"]:,} images '
             'scored; run again to resume', dist)
    return summary
