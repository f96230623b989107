"""Plot training curves from MMEngine's scalar logs.

MMEngine's ``LocalVisBackend`` writes ``WORK_DIR/<timestamp>/vis_data/scalars.json``,
one JSON object per line, e.g. ``{"lr": 0.1, "loss": 2.3, "iter": 20, "step": 20}``
for training and ``{"accuracy/top1": 71.2, "step": 3}`` for validation (``step`` is
the iteration for training lines and the epoch, or the iteration in iteration-based
runs, for validation lines). Given a work dir, every run in it is read in
timestamp order, so a resumed run continues the curve; where runs overlap the
later value wins.

Example:
    python tools/analysis_tools/plot_curves.py work_dirs/run1 \
        --keys loss distill.loss_s3_spatial accuracy/top1 --out curves.png
"""
import argparse
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

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


def plot(curves: Curves, out: str, title: Optional[str] = None) -> None:
    import matplotlib
    matplotlib.use('Agg')  # files only, no display needed
    import matplotlib.pyplot as plt

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
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description='Plot curves from MMEngine scalar logs')
    parser.add_argument('path', metavar='WORK_DIR_OR_JSON_LOG',
                        help='work dir, vis_data dir or a scalars.json file')
    parser.add_argument('--keys', nargs='+', default=['loss'],
                        help='scalars to plot, one panel each. Defaults to loss')
    parser.add_argument('--out', default='curves.png', help='PNG to write')
    parser.add_argument('--title', help='figure title')
    args = parser.parse_args(argv)

    try:
        curves = read_curves(find_logs(args.path), args.keys)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    empty = [key for key, values in curves.items() if not values]
    if empty:
        parser.error(f'no values for {empty} in {args.path}')
    plot(curves, args.out, args.title)
    print(f'saved {args.out} ({", ".join(f"{k}: {len(v)} points" for k, v in curves.items())})')


if __name__ == '__main__':
    main()
