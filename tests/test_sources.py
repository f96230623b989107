"""Every reference in the shipped tree is one a reader can open.

Two checks over the files a user gets (``mmscalekd/``, ``configs/``, ``tools/``, ``docs/``,
``tests/``, ``README.md``, ``setup.py``, ``.ci/``):

* no reference to material outside the repository: internal method-spec sections, the
  shared folder of the development set-up, the removed compatibility module, internal issue
  numbers (an official repository's issue, ``deep-optimization/ScaleKD issue #1``, or a
  GitHub URL is fine);
* every repository path written in backticks or as a relative link in ``README.md`` and the
  Markdown pages under ``docs/`` and ``configs/`` exists.

Each failure names ``file:line``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ('mmscalekd', 'configs', 'tools', 'docs', 'tests', '.ci', 'README.md', 'setup.py')
TEXT_SUFFIXES = {'.py', '.md', '.yml', '.yaml', '.sh', '.txt', '.cfg', '.toml', '.json', ''}

# The patterns are assembled so that this file does not match itself.
_SECTION = '\u00a7'
FORBIDDEN = [
    (re.compile(r'\bspec\s*' + _SECTION), 'a method-spec section'),
    (re.compile(r'\banchors\s*' + _SECTION), 'an anchors section'),
    (re.compile(r'shared/' + r'spec'), 'the shared spec folder'),
    (re.compile(r'\.\./' + r'shared\b'), 'the shared folder'),
    (re.compile(r'\bcompat' + r' fix', re.I), 'the removed compatibility fixes'),
    (re.compile(r'\b(?:issues?|PRs?|pull requests?)\s*\(?#?\d+\b', re.I),
     'an internal issue number'),
    (re.compile(r'(?:\(|\bsee\s+)#\d+\b', re.I), 'an internal issue number'),
]
# Issue references a reader can open: ``owner/repo issue #N`` and GitHub URLs.
ALLOWED = re.compile(
    r'[\w.-]+/[\w.-]+(?:@[0-9a-f]+)?\s+(?:issues?|PRs?|pull requests?)\s*#\d+'
    r'|https?://github\.com/\S+', re.I)


def shipped_files(root: Path = ROOT) -> List[Path]:
    """The text files of the shipped tree under ``root``."""
    files: List[Path] = []
    for name in SHIPPED:
        top = root / name
        if top.is_file():
            files.append(top)
            continue
        for folder, dirs, names in os.walk(top):
            dirs[:] = [d for d in dirs if d != '__pycache__' and not d.startswith('.')]
            files += [Path(folder) / n for n in names
                      if Path(n).suffix in TEXT_SUFFIXES and not n.endswith('.pyc')]
    return sorted(files)


def find_unopenable(paths: Iterable[Path], root: Path = ROOT) -> List[str]:
    """``file:line: what`` for every reference a reader cannot open."""
    problems: List[str] = []
    for path in paths:
        try:
            lines = path.read_text(encoding='utf-8').splitlines()
        except UnicodeDecodeError:
            continue  # binary data (images, arrays) carries no references
        for number, line in enumerate(lines, 1):
            checked = ALLOWED.sub('', line)
            for pattern, what in FORBIDDEN:
                match = pattern.search(checked)
                if match:
                    problems.append(f'{path.relative_to(root)}:{number}: {what} '
                                    f'({match.group(0)!r})')
                    break
    return problems


# Repository paths: a top-level folder of the repository followed by a path, or a top-level
# file. Official-repository and upstream citations (``owner/repo@commit path``) are skipped.
_TOP = r'(?:mmscalekd|configs|tools|docs|tests|requirements|\.ci)/'
_FILES = r'(?:setup\.py|pyproject\.toml|model-index\.yml|requirements\.txt|README\.md)'
REPO_PATH = re.compile(r'(?<![\w./@-])((?:' + _TOP + r'[\w./-]*[\w/]|' + _FILES + r'))')
CODE_SPAN = re.compile(r'`([^`\n]+)`')
LINK = re.compile(r'\]\(((?:\.\./|\./)?[\w./-]+)(?:#[\w-]*)?\)')


def markdown_pages(root: Path = ROOT) -> List[Path]:
    """``README.md`` and every Markdown page under ``docs/`` and ``configs/``."""
    pages = [root / 'README.md']
    for top in ('docs', 'configs'):
        pages += sorted((root / top).rglob('*.md'))
    return pages


def find_dead_paths(pages: Iterable[Path], root: Path = ROOT) -> List[str]:
    """``file:line: path`` for every repository path in backticks or links that is missing."""
    problems: List[str] = []
    for page in pages:
        for number, line in enumerate(page.read_text(encoding='utf-8').splitlines(), 1):
            for span in CODE_SPAN.findall(line):
                if '@' in span or any(c in span for c in '*<{$'):
                    continue  # a citation of another repository, a pattern or a placeholder
                for match in REPO_PATH.finditer(span):
                    rel = re.sub(r':\d+(?:-\d+)?$', '', match.group(1)).rstrip('/')
                    parts = rel.split('/')
                    if (len(parts) > 2 or '.' not in parts[-1]) and len(parts) > 1 \
                            and not (root / parts[0] / parts[1]).is_dir():
                        continue  # another repository's layout (official configs, PaddleClas)
                    if not (root / rel).exists():
                        problems.append(f'{page.relative_to(root)}:{number}: `{rel}`')
            for target in LINK.findall(line):
                if '://' in target:
                    continue
                if not (page.parent / target).exists():
                    problems.append(f'{page.relative_to(root)}:{number}: link {target}')
    return problems


def test_shipped_tree_cites_only_openable_sources() -> None:
    this = Path(__file__).resolve()  # its own examples below are planted on purpose
    problems = find_unopenable(p for p in shipped_files() if p.resolve() != this)
    assert not problems, 'references a reader cannot open:\n' + '\n'.join(problems)


def test_repository_paths_in_docs_exist() -> None:
    problems = find_dead_paths(markdown_pages())
    assert not problems, 'paths that do not exist:\n' + '\n'.join(problems)


@pytest.mark.parametrize('line, flagged', [
    ('# four stages (spec ' + _SECTION + '7)', True),
    ('see anchors ' + _SECTION + '2', True),
    ('read ../' + 'shared/spec/scalekd.md', True),
    ('import mmscalekd  # noqa: F401  (compat' + ' fixes first)', True),
    ('"""Skipped and counted (issue 8)."""', True),
    ('# ---------------- issue 4', True),
    ('fixed in #12', False),  # a bare number is not read as an issue
    ('fixed, see #12', True),
    ('(#12)', True),
    ('deep-optimization/ScaleKD issue #1 asks for the logs', False),
    ('https://github.com/deep-optimization/ScaleKD/issues/4', False),
    ("match=r'subset size #0 must be an int'", False),
    ('fingerprint {crc:#010x}', False),
])
def test_scanner_flags_internal_references(tmp_path: Path, line: str, flagged: bool) -> None:
    (tmp_path / 'mmscalekd').mkdir()
    (tmp_path / 'mmscalekd' / 'x.py').write_text(f'a = 1\n{line}\n', encoding='utf-8')
    problems = find_unopenable(shipped_files(tmp_path), tmp_path)
    if flagged:
        assert len(problems) == 1 and problems[0].startswith('mmscalekd/x.py:2: ')
    else:
        assert problems == []


def test_dead_path_check_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'tools').mkdir()
    (tmp_path / 'tools' / 'train.py').write_text('', encoding='utf-8')
    (tmp_path / 'README.md').write_text(
        'Run `python tools/train.py cfg.py` and `tools/gone.py:12`.\n'
        'Official: `deep-optimization/ScaleKD@5ba1f04 configs/x.py:3`; `configs/*.py`.\n'
        'See [the page](docs/missing.md) and [train](tools/train.py).\n', encoding='utf-8')
    problems = find_dead_paths(markdown_pages(tmp_path), tmp_path)
    assert problems == ['README.md:1: `tools/gone.py`', 'README.md:3: link docs/missing.md']
