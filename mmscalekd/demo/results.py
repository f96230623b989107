"""The demo's results over seeds: mean ± std per cell, paired differences, table and curves.

Runs of different methods with the same seed share the labeled subset and the seed of the
initialisation and batch order, so differences between methods are taken per seed (paired) and
summarised as mean ± std of the per-seed differences. A difference is *within the seed spread*
when its magnitude is at most that std; with one seed the spread is unknown.
"""
from __future__ import annotations

import io
import json
import math
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .configs import METHOD_NAMES, METHODS, STUDENT_NAMES, TEACHER_NAME
from .outputs import atomic_write, atomic_write_text

#: Comparisons listed under the table: (method, baseline).
COMPARISONS = (('kd', 'labels'), ('scalekd', 'labels'), ('ssld', 'labels'), ('scalekd', 'kd'))


def mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (ddof=1; None for fewer than two values)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError('mean_std needs at least one value')
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def _by_cell(runs: Iterable[Dict[str, Any]]) -> Dict[Tuple[str, str], Dict[int, Dict]]:
    cells: Dict[Tuple[str, str], Dict[int, Dict]] = {}
    for run in runs:
        cells.setdefault((run['student'], run['method']), {})[int(run['seed'])] = run
    return cells


def aggregate(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Mean ± std per (student, method) and the paired comparisons of :data:`COMPARISONS`.

    Args:
        runs (Sequence[dict]): Student run results (``student, method, seed, top1, ...``).

    Returns:
        dict: ``cells``: list of ``dict(student, method, seeds, top1, mean, std, params,
        wall_s)``; ``comparisons``: list of ``dict(student, method, baseline, seeds,
        differences, mean, std, within_spread)`` (``within_spread`` None with one seed).
    """
    by_cell = _by_cell(runs)
    cells = []
    for (student, method), per_seed in sorted(by_cell.items(), key=_order):
        seeds = sorted(per_seed)
        values = [per_seed[s]['top1'] for s in seeds]
        mean, std = mean_std(values)
        cells.append(dict(student=student, method=method, seeds=seeds, top1=values,
                          mean=round(mean, 3), std=None if std is None else round(std, 3),
                          params=per_seed[seeds[0]]['params'],
                          wall_s=round(sum(per_seed[s]['wall_s'] for s in seeds) / len(seeds),
                                       1)))
    comparisons = []
    students = sorted({s for s, _ in by_cell}, key=lambda s: list(STUDENT_NAMES).index(s)
                      if s in STUDENT_NAMES else 99)
    for student in students:
        for method, baseline in COMPARISONS:
            a, b = by_cell.get((student, method)), by_cell.get((student, baseline))
            if not a or not b:
                continue
            seeds = sorted(set(a) & set(b))
            if not seeds:
                continue
            diffs = [a[s]['top1'] - b[s]['top1'] for s in seeds]
            mean, std = mean_std(diffs)
            comparisons.append(dict(
                student=student, method=method, baseline=baseline, seeds=seeds,
                differences=[round(d, 3) for d in diffs], mean=round(mean, 3),
                std=None if std is None else round(std, 3),
                within_spread=None if std is None else bool(abs(mean) <= std)))
    return dict(cells=cells, comparisons=comparisons)


def _order(item: Tuple[Tuple[str, str], Any]) -> Tuple[int, int]:
    (student, method), _ = item
    return (list(STUDENT_NAMES).index(student) if student in STUDENT_NAMES else 99,
            METHODS.index(method) if method in METHODS else 99)


def _pm(mean: float, std: Optional[float], signed: bool = False) -> str:
    text = f'{mean:+.2f}' if signed else f'{mean:.2f}'
    return text if std is None else f'{text} ± {std:.2f}'


def _verdict(comparison: Dict[str, Any]) -> str:
    if comparison['within_spread'] is None:
        return 'one seed: spread unknown'
    return 'within the seed spread' if comparison['within_spread'] else 'beyond the seed spread'


def format_table(results: Dict[str, Any]) -> str:
    """The Markdown table (and the comparison lines under it) of a demo's results."""
    setting, teacher = results['setting'], results.get('teacher')
    seeds = setting['seeds']
    seed_text = (f'seed {seeds[0]}' if len(seeds) == 1 else
                 f'seeds {", ".join(str(s) for s in seeds)}')
    lines = [
        f'# Demo: ViT teacher -> CNN and MLP students on {setting["data_name"]!r} '
        f'({setting["labels"]} labels of {setting["num_classes"]} classes, per class; '
        f'pool {setting["pool"]} images; {setting["iters"]} steps per run; {seed_text})', '',
        f'Top-1 (%) on {setting["val_size"]} test images'
        + ('' if len(seeds) == 1 else ': mean ± std over the seeds') + '.', '',
        '| model | method | top-1 (%) | vs labels only | params (M) | time per run (s) |',
        '|---|---|---|---|---|---|']
    if teacher:
        lines.append(f'| {TEACHER_NAME} | {teacher["summary"]} | {teacher["top1"]:.2f} | | '
                     f'{teacher["params"] / 1e6:.2f} | - |')
    vs_labels = {(c['student'], c['method']): c for c in results['comparisons']
                 if c['baseline'] == 'labels'}
    for cell in results['cells']:
        comp = vs_labels.get((cell['student'], cell['method']))
        delta = '' if comp is None else (
            f'{_pm(comp["mean"], comp["std"], signed=True)}'
            + ('' if comp['within_spread'] is None else
               ' (within spread)' if comp['within_spread'] else ''))
        lines.append(
            f'| {STUDENT_NAMES.get(cell["student"], cell["student"])} | '
            f'{METHOD_NAMES.get(cell["method"], cell["method"])} | '
            f'{_pm(cell["mean"], cell["std"])} | {delta} | {cell["params"] / 1e6:.2f} | '
            f'{cell["wall_s"]:.0f} |')
    others = [c for c in results['comparisons'] if c['baseline'] != 'labels']
    if others:
        lines.append('')
        for comp in others:
            lines.append(
                f'- {METHOD_NAMES[comp["method"]]} - {METHOD_NAMES[comp["baseline"]]}, '
                f'{STUDENT_NAMES.get(comp["student"], comp["student"])}: '
                f'{_pm(comp["mean"], comp["std"], signed=True)} points ({_verdict(comp)})')
    lines.append('')
    lines.append('Differences are paired by seed (same labeled images and seed): mean ± std of '
                 'the per-seed differences; "within spread": |mean| <= std.'
                 if len(seeds) > 1 else
                 'One seed: no spread; run with --seeds 3 to tell effects from noise.')
    for warning in results.get('warnings', []):
        lines.append('')
        lines.append(f'**Warning:** {warning}')
    return '\n'.join(lines) + '\n'


def _mean_curve(curves: Sequence[Sequence[Sequence[float]]]) -> Tuple[List[int], List[float],
                                                                       List[float]]:
    steps = sorted(set.intersection(*[{int(s) for s, _ in c} for c in curves])) if curves else []
    means, stds = [], []
    for step in steps:
        values = [a for c in curves for s, a in c if int(s) == step]
        mean, std = mean_std(values)
        means.append(mean)
        stds.append(std or 0.0)
    return steps, means, stds


def plot_curves(results: Dict[str, Any]) -> bytes:
    """PNG bytes: per student, each method's mean accuracy curve with a ±std band over seeds."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    runs = results['runs']
    students = [s for s in STUDENT_NAMES if any(r['student'] == s for r in runs)]
    fig, axes = plt.subplots(1, max(1, len(students)), figsize=(6 * max(1, len(students)), 4),
                             squeeze=False)
    seeds = results['setting']['seeds']
    for ax, student in zip(axes[0], students):
        for method in METHODS:
            curves = [r['curve'] for r in runs
                      if r['student'] == student and r['method'] == method and r['curve']]
            if not curves:
                continue
            steps, means, stds = _mean_curve(curves)
            line, = ax.plot(steps, means, marker='o', label=METHOD_NAMES[method])
            if len(curves) > 1:
                ax.fill_between(steps, [m - s for m, s in zip(means, stds)],
                                [m + s for m, s in zip(means, stds)], color=line.get_color(),
                                alpha=0.2, linewidth=0)
        if results.get('teacher'):
            ax.axhline(results['teacher']['top1'], color='k', linestyle='--', label='teacher')
        ax.set_title(STUDENT_NAMES[student])
        ax.set_xlabel('training step')
        ax.set_ylabel(f'top-1 (%), {results["setting"]["curve_size"]} test images')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    title = 'one seed' if len(seeds) == 1 else f'mean ± std over {len(seeds)} seeds'
    fig.suptitle(f'{results["setting"]["data_name"]}: {title}', fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_results(results: Dict[str, Any], work_dir: str) -> Dict[str, str]:
    """Write ``results.json``, ``results.md`` and ``accuracy_curves.png`` atomically.

    Returns:
        dict: ``{'json': path, 'md': path, 'png': path}``.
    """
    paths = dict(json=osp.join(work_dir, 'results.json'), md=osp.join(work_dir, 'results.md'),
                 png=osp.join(work_dir, 'accuracy_curves.png'))
    atomic_write_text(paths['json'], json.dumps(results, indent=2) + '\n')
    atomic_write_text(paths['md'], format_table(results))
    png = plot_curves(results)
    atomic_write(paths['png'], lambda f: f.write(png))
    return paths
