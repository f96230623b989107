"""Throughput of the mining tool's de-duplication step alone, on synthetic data.

The validation index holds ``--refs`` random 64-bit pHashes and ``--dim``-d unit features (50 k
and 2048 by default: the ImageNet-1k validation set and the ResNeXt-101 32x16d target width);
batches of ``--batch`` pool images are matched against it with
:class:`mmscalekd.ssld.mining.NearDuplicateIndex`, exactly as ``mine()`` does per batch. A few
planted near-copies in every batch check that the matches are found. Decoding, pHash
computation (in the DataLoader workers) and the teacher are not part of this measurement.

Usage::

    nice -n 10 python tools/analysis_tools/benchmark_dedup.py [--refs 50000] [--dim 2048] \\
        [--batch 256] [--seconds 10] [--threads 1] [--device cpu] [--out result.json]
"""
# isort: off
import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.dirname(_osp.dirname(_osp.abspath(__file__)))))
# isort: on
import argparse  # noqa: E402
import json
import os
import platform
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from mmscalekd.ssld.mining import NearDuplicateIndex
from mmscalekd.ssld.mining.io import atomic_write_json


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--refs', type=int, default=50_000, help='validation images indexed')
    parser.add_argument('--dim', type=int, default=2048, help='feature width')
    parser.add_argument('--batch', type=int, default=256, help='pool images per query')
    parser.add_argument('--seconds', type=float, default=10.0, help='time per mode')
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    parser.add_argument('--device', default='cpu', help='where the cosines are computed')
    parser.add_argument('--modes', nargs='+', default=['phash', 'feature', 'both'],
                        choices=['phash', 'feature', 'both'])
    parser.add_argument('--out', default=None, help='write the results as JSON here')
    args = parser.parse_args(argv)
    for name in ('refs', 'dim', 'batch', 'threads'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.seconds <= 0:
        parser.error(f'--seconds must be > 0, got {args.seconds}')
    return args


def _batches(rng: np.random.Generator, hashes: np.ndarray, feats: torch.Tensor, batch: int,
             count: int) -> List[dict]:
    """Random pool batches; 4 images of each are planted near-copies of validation images."""
    out = []
    for _ in range(count):
        q_hash = rng.integers(0, 2**63, size=batch, dtype=np.uint64)
        q_feat = torch.nn.functional.normalize(torch.randn(batch, feats.shape[1]), dim=1)
        planted = rng.choice(len(hashes), size=min(4, batch), replace=False)
        q_hash[:len(planted)] = hashes[planted] ^ np.uint64(0b11)  # Hamming distance 2
        noise = torch.randn(len(planted), feats.shape[1])
        q_feat[:len(planted)] = feats[planted] + 0.1 * noise / noise.norm(dim=1, keepdim=True)
        out.append(dict(hash=q_hash, feat=q_feat, planted=planted))
    return out


def run(args: argparse.Namespace) -> Dict[str, object]:
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    hashes = rng.integers(0, 2**63, size=args.refs, dtype=np.uint64)
    feats = torch.nn.functional.normalize(torch.randn(args.refs, args.dim), dim=1)
    batches = _batches(rng, hashes, feats, args.batch, 8)
    results: Dict[str, object] = dict(
        refs=args.refs, dim=args.dim, batch=args.batch, threads=args.threads,
        device=args.device, machine=platform.processor() or platform.machine(),
        torch=torch.__version__, numpy=np.__version__,
        load_average_1min_before=round(os.getloadavg()[0], 2), cpus=os.cpu_count(), modes={})
    for mode in args.modes:
        t0 = time.perf_counter()
        index = NearDuplicateIndex(hashes=hashes if mode != 'feature' else None,
                                   features=feats if mode != 'phash' else None,
                                   phash_threshold=4, cosine_threshold=0.95,
                                   device=args.device)
        build_s = time.perf_counter() - t0
        found = total = images = 0
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            for b in batches:
                feat = b['feat'].to(args.device) if mode != 'phash' else None
                m = index.query(b['hash'] if mode != 'feature' else None, feat)
                k = len(b['planted'])
                found += int((m.dup_of[:k] == b['planted']).sum())
                total += k
                images += args.batch
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        results['modes'][mode] = dict(
            images_per_s=round(images / seconds, 1), images=images,
            seconds=round(seconds, 3), index_build_s=round(build_s, 3),
            planted_found=f'{found}/{total}')
        print(f'{mode:8s} {images / seconds:12,.1f} images/s  (index of {args.refs:,} built in '
              f'{build_s:.2f} s; planted near-copies found: {found}/{total})', flush=True)
    results['load_average_1min_after'] = round(os.getloadavg()[0], 2)
    return results


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    results = run(args)
    if args.out:
        atomic_write_json(args.out, results)
    else:
        print(json.dumps(results, indent=1))
    return results


if __name__ == '__main__':
    main()
