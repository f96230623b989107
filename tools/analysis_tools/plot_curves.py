"""Plot training curves from MMEngine's scalar logs.

MMEngine's ``LocalVisBackend`` writes ``WORK_DIR/<timestamp>/vis_data/scalars.json``,
one JSON object per line, e.g. ``{"lr": 0.1, "loss": 2.3, "iter": 20, "step": 20}``
for training and ``{"accuracy/top1": 71.2, "step": 3}`` for validation (``step`` is
the iteration for training lines and the epoch, or the iteration in iteration-based
runs, for validation lines). Given a work dir, every run in it is read in
timestamp order, so a resumed run continues the curve; where runs overlap the
later value wins.

The figure is written atomically (a temporary file next to ``--out``, renamed when
complete); an existing ``--out`` is replaced only with ``--force``.

Example:
    python tools/analysis_tools/plot_curves.py work_dirs/run1 \
        --keys loss distill.loss_s3_spatial accuracy/top1 --out curves.png
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmscalekd.utils.atomic_io import AtomicOutput, check_output  # noqa: E402

Curves = Dict[str, List[Tuple[float, float]]]


def find_logs(path: str) -> List[str]:
    """The scalar logs under ``path`` (a work dir, a vis_data dir or a .json file)."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path!r} is neither a work dir nor a JSON log')
    for pattern in ('scalars.json', 'vis_data/scalars.json', '*/vis_data/scalars.json'):
        found = sorted(glob.glob(osp.join(path, pattern)))
        if found:
            return found
    raise FileNotFoundError(f'no vis_data/scalars.json under {path!r}; was the run logged with '
                            "vis_backends=[dict(type='LocalVisBackend')]?")


def read_curves(logs: List[str], keys: List[str]) -> Curves:
    """``{key: [(step, value), ...]}`` sorted by step; later logs override earlier steps."""
    points: Dict[str, Dict[float, float]] = {key: {} for key in keys}
    for log in logs:
        with open(log) as f:
            for line_no, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f'{log}:{line_no} is not JSON ({err})') from err
                step = record.get('step', record.get('iter'))
                for key in keys:
                    if key in record and step is not None:
                        points[key][float(step)] = float(record[key])
    return {key: sorted(values.items()) for key, values in points.items()}


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')  # files only, no display needed
    import matplotlib.pyplot as plt
    return plt


def image_formats() -> List[str]:
    """The file extensions matplotlib can write here (``png``, ``pdf``, ``svg``, ...)."""
    plt = _pyplot()
    fig = plt.figure()
    try:
        return sorted(fig.canvas.get_supported_filetypes())
    finally:
        plt.close(fig)


def plot(curves: Curves, out: str, title: Optional[str] = None, force: bool = False) -> None:
    """Draw one panel per key and write the figure to ``out`` (format from its extension)."""
    plt = _pyplot()

    fig, axes = plt.subplots(len(curves), 1, figsize=(7, 2.6 * len(curves)), squeeze=False)
    for ax, (key, values) in zip(axes[:, 0], curves.items()):
        xs, ys = zip(*values)
        ax.plot(xs, ys, marker='.' if len(xs) < 50 else None)
        ax.set_ylabel(key)
        ax.set_xlabel('step')
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with AtomicOutput(out, force=force, what='--out') as target:
        fig.savefig(target.tmp, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description='Plot curves from MMEngine scalar logs')
    parser.add_argument('path', metavar='WORK_DIR_OR_JSON_LOG',
                        help='work dir, vis_data dir or a scalars.json file')
    parser.add_argument('--keys', nargs='+', default=['loss'],
                        help='scalars to plot, one panel each. Defaults to loss')
    parser.add_argument('--out', default='curves.png',
                        help='figure to write; the format follows the extension (.png, .pdf, '
                        '.svg, ...). Defaults to curves.png')
    parser.add_argument('--title', help='figure title')
    parser.add_argument('--force', action='store_true', help='replace --out if it exists')
    args = parser.parse_args(argv)
    try:  # before the logs are read
        check_output(args.out, args.force, what='--out')
    except OSError as err:
        parser.error(str(err))
    ext = osp.splitext(args.out)[1].lstrip('.').lower()
    formats = image_formats()
    if ext not in formats:
        got = f'.{ext}' if ext else 'a name without an extension'
        parser.error(f'--out {args.out!r}: matplotlib cannot write {got}; use one of '
                     f'.{", .".join(formats)}')

    try:
        curves = read_curves(find_logs(args.path), args.keys)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    empty = [key for key, values in curves.items() if not values]
    if empty:
        parser.error(f'no values for {empty} in {args.path}')
    plot(curves, args.out, args.title, force=args.force)
    print(f'saved {args.out} ({", ".join(f"{k}: {len(v)} points" for k, v in curves.items())})')


if __name__ == '__main__':
    main()
