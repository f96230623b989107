"""Render the recipe audit page from its table, or check that they agree.

The table ``configs/scalekd/recipe_audit.yml`` holds one record per (config, setting) of
every ScaleKD config against the official recipe; the page ``docs/recipe_audit.md`` is
rendered from it (``mmscalekd.utils.recipe_audit``).

Usage::

    python tools/misc/render_recipe_audit.py             # write docs/recipe_audit.md
    python tools/misc/render_recipe_audit.py --check     # exit 1 if the page is stale
    python tools/misc/render_recipe_audit.py --check-configs   # every config vs its "ours"

Exits with status 1 and one line per problem when something disagrees.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import List

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)  # run from a checkout without installing

TABLE = osp.join(ROOT, 'configs', 'scalekd', 'recipe_audit.yml')
PAGE = osp.join(ROOT, 'docs', 'recipe_audit.md')


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--table', default=TABLE, help='audit table (YAML)')
    parser.add_argument('--out', default=PAGE, help='page to write or check')
    parser.add_argument('--check', action='store_true',
                        help='do not write; exit 1 if the page differs from the rendered table')
    parser.add_argument('--check-configs', action='store_true',
                        help='load every audited config and compare it with its "ours" checks')
    args = parser.parse_args(argv)

    from mmscalekd.utils.recipe_audit import check_config, load_audit, render_markdown
    table = load_audit(args.table)
    problems: List[str] = []
    if args.check_configs:
        from mmengine.config import Config

        cfg_dir = osp.join(osp.dirname(osp.abspath(args.table)))
        for name in table.configs:
            path = osp.join(cfg_dir, name)
            if not osp.isfile(path):
                problems.append(f'{name}: audited config not found at {path}')
                continue
            problems += check_config(Config.fromfile(path).to_dict(), table.records_for(name),
                                     name)
    text = render_markdown(table)
    if args.check:
        old = open(args.out, encoding='utf-8').read() if osp.isfile(args.out) else ''
        if old != text:
            problems.append(f'{args.out} is stale: run python tools/misc/render_recipe_audit.py')
    elif not args.check_configs:
        from mmscalekd.utils.atomic_io import replace_atomically

        # atomic: a killed run never leaves half a page
        replace_atomically(args.out, lambda f: f.write(text.encode('utf-8')))
        print(f'wrote {osp.relpath(args.out, ROOT)} ({len(table.records)} records, '
              f'{len(table.configs)} configs)')
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
