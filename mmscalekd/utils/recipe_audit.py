"""The recipe audit: every ScaleKD config of ours against the official recipe, as data.

The audit table (``configs/scalekd/recipe_audit.yml``) holds one record per (config,
setting): the official value with the file and line it comes from at a named commit of
``deep-optimization/ScaleKD`` (or the stock mmpretrain/mmengine file that the official
code inherits), our value as one or more *checks* on the loaded config, and a verdict.
This module loads and validates the table, evaluates the checks on a config (the drift
test and ``tools/misc/render_recipe_audit.py --check-configs`` use it) and renders the
page ``docs/recipe_audit.md``.

A check names a key of the loaded config and the value it must have::

    model.student.backbone.drop_path_rate                 # dotted path
    train_dataloader.dataset.pipeline[type=RandAugment]   # first list item whose type matches
    model.distill_stages[name=s3].connector.num_heads     # ... or whose name matches
    param_scheduler[1].eta_min                            # list index
    @name.gpus, @name.batch                               # parsed from the file name (32xb64)
    @total_batch                                          # @name.gpus * train_dataloader.batch_size

A check holds ``value`` (compared after turning tuples into lists; floats with a relative
tolerance of 1e-9), or ``absent: true`` (the key must not exist). ``default`` is the value
the library uses when the key is not written (e.g. mmpretrain's ``EMAHook``
``evaluate_on_ema=True``); a missing key with a default compares the default.
"""
from __future__ import annotations

import math
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

VERDICTS = ('same', 'fixed', 'deliberate', 'disagreement', 'unverified')
"""``same``: ours equals the official value. ``fixed``: ours differed (or the official
config could not run) and now follows the official recipe, or the smallest runnable
reading of it. ``deliberate``: a difference we keep, with its reason (and the switch
that restores the official behaviour where one exists). ``disagreement``: official sources
disagree with each other; the reason says which and what we follow. ``unverified``: the
official file that holds the value is not in the stored copy of the official repository
used for this audit; the reason says what we use."""

READ_MODES = ('direct', 'blob', 'stock')
"""How a source's text was read: ``direct`` from the official repository at that commit;
``blob`` from the stored text of the same path in a later copy of the first author's tree
(the stored index lists the path there, not under the official repository; that the text
is the official file's is inferred, not checked); ``stock`` from the upstream file
(mmpretrain, mmengine) that the official code inherits."""

_NAME_RE = re.compile(r'_(\d+)xb(\d+)_')
_SEGMENT_RE = re.compile(r'([^.\[\]]+)|\[([^\]]+)\]')
_REQUIRED_RECORD_KEYS = ('setting', 'official', 'source', 'ours', 'verdict')


class AuditTableError(ValueError):
    """The audit table is malformed (names the record and what is wrong)."""


class _Missing:
    def __repr__(self) -> str:
        return '<absent>'


MISSING = _Missing()


@dataclass(frozen=True)
class Source:
    """One file the audit cites.

    Args:
        id (str): Short name used by the records.
        repo (str): ``owner/name`` on GitHub.
        commit (str): Full commit hash or tag.
        path (str): Path inside the repository.
        read (str): One of :data:`READ_MODES`.
        note (str): Optional remark rendered in the source list.
    """
    id: str
    repo: str
    commit: str
    path: str
    read: str
    note: str = ''

    def cite(self, lines: str = '') -> str:
        """``repo@commit7 path[:lines]``."""
        commit = self.commit[:7] if re.fullmatch(r'[0-9a-f]{40}', self.commit) else self.commit
        return f'{self.repo}@{commit} {self.path}' + (f':{lines}' if lines else '')


@dataclass(frozen=True)
class Check:
    """A key of the loaded config and the value it must have.

    Args:
        key (str): Key path (module docstring).
        value (Any): Expected value (ignored when ``absent``).
        absent (bool): The key must not exist.
        default (Any): Value used when the key is not written; :data:`MISSING` for none.
    """
    key: str
    value: Any = None
    absent: bool = False
    default: Any = MISSING

    def describe(self) -> str:
        if self.absent:
            return f'`{self.key}` not set'
        text = f'`{self.key}` = {_fmt(self.value)}'
        if self.default is not MISSING:
            text += ' (default)' if _same(self.value, self.default) else ''
        return text


@dataclass(frozen=True)
class Record:
    """One (config, setting) row of the audit."""
    config: str
    setting: str
    official: str
    sources: Tuple[Tuple[Source, str], ...]
    checks: Tuple[Check, ...]
    verdict: str
    ours_text: str = ''
    reason: str = ''
    switch: str = ''

    def ours(self) -> str:
        return self.ours_text or '; '.join(c.describe() for c in self.checks)

    def cites(self) -> List[str]:
        return [src.cite(lines) for src, lines in self.sources]


@dataclass(frozen=True)
class OfficialConfig:
    """One distiller config of the official history and the config of ours it maps to."""
    path: str
    present: str
    ours: Optional[str]
    note: str = ''


@dataclass
class AuditTable:
    """The loaded audit table."""
    title: str
    intro: str
    required_settings: Tuple[str, ...]
    sources: Dict[str, Source]
    official_configs: Tuple[OfficialConfig, ...]
    configs: Dict[str, str]  # our config file name -> its official counterpart (text)
    records: Tuple[Record, ...] = field(default_factory=tuple)

    def records_for(self, config: str) -> List[Record]:
        return [r for r in self.records if r.config == config]


def _parse_source_ref(ref: str, sources: Mapping[str, Source], where: str) -> Tuple[Source, str]:
    if not isinstance(ref, str) or not ref:
        raise AuditTableError(f'{where}: a source must be "id" or "id:lines", got {ref!r}')
    sid, _, lines = ref.partition(':')
    if sid not in sources:
        raise AuditTableError(f'{where}: unknown source {sid!r}; add it under "sources" '
                              f'(known: {", ".join(sorted(sources))})')
    if lines and not re.fullmatch(r'\d+(-\d+)?(,\d+(-\d+)?)*', lines):
        raise AuditTableError(f'{where}: lines must look like "12", "12-14" or "3,7", '
                              f'got {lines!r}')
    return sources[sid], lines


def _parse_check(raw: Any, where: str) -> Check:
    if not isinstance(raw, dict) or 'key' not in raw:
        raise AuditTableError(f'{where}: each "ours" entry must be a mapping with a "key", '
                              f'got {raw!r}')
    unknown = set(raw) - {'key', 'value', 'absent', 'default'}
    if unknown:
        raise AuditTableError(f'{where}: unknown check field(s) {sorted(unknown)}; '
                              'accepted: key, value, absent, default')
    absent = bool(raw.get('absent', False))
    if absent == ('value' in raw):
        raise AuditTableError(f'{where}: check {raw["key"]!r} needs exactly one of "value" '
                              'and "absent: true"')
    return Check(key=raw['key'], value=raw.get('value'), absent=absent,
                 default=raw['default'] if 'default' in raw else MISSING)


def load_audit(path: str) -> AuditTable:
    """Load and validate the audit table.

    Args:
        path (str): Path of the YAML table.

    Returns:
        AuditTable: The table; every record's sources and verdict are checked.

    Raises:
        AuditTableError: With the record and the field that is wrong.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'audit table {path!r} not found')
    with open(path, encoding='utf-8') as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise AuditTableError(f'{path}: the table must be a mapping')
    for key in ('title', 'intro', 'required_settings', 'sources', 'official_configs',
                'configs'):
        if key not in data:
            raise AuditTableError(f'{path}: missing top-level key {key!r}')
    sources: Dict[str, Source] = {}
    for sid, raw in data['sources'].items():
        read = raw.get('read')
        if read not in READ_MODES:
            raise AuditTableError(f'{path}: source {sid!r}: read must be one of {READ_MODES}, '
                                  f'got {read!r}')
        sources[sid] = Source(id=sid, repo=raw['repo'], commit=str(raw['commit']),
                              path=raw['path'], read=read, note=raw.get('note', ''))
    official = tuple(
        OfficialConfig(path=o['path'], present=o['present'], ours=o.get('ours'),
                       note=o.get('note', '')) for o in data['official_configs'])
    configs: Dict[str, str] = {}
    records: List[Record] = []
    required = tuple(data['required_settings'])
    for name, entry in data['configs'].items():
        configs[name] = entry.get('official', '')
        seen = set()
        for i, raw in enumerate(entry.get('settings', [])):
            where = f'{path}: {name}: setting #{i} ({raw.get("setting", "?")})'
            missing = [k for k in _REQUIRED_RECORD_KEYS if k not in raw]
            if missing:
                raise AuditTableError(f'{where}: missing {missing}')
            if raw['setting'] in seen:
                raise AuditTableError(f'{where}: duplicate setting')
            seen.add(raw['setting'])
            if raw['verdict'] not in VERDICTS:
                raise AuditTableError(f'{where}: verdict must be one of {VERDICTS}, '
                                      f'got {raw["verdict"]!r}')
            if raw['verdict'] != 'same' and not raw.get('reason'):
                raise AuditTableError(f'{where}: verdict {raw["verdict"]!r} needs a "reason"')
            refs = raw['source'] if isinstance(raw['source'], list) else [raw['source']]
            if not refs:
                raise AuditTableError(f'{where}: at least one source is needed')
            ours = raw['ours'] if isinstance(raw['ours'], list) else [raw['ours']]
            if not ours:
                raise AuditTableError(f'{where}: at least one check in "ours" is needed')
            records.append(Record(
                config=name, setting=raw['setting'], official=str(raw['official']),
                sources=tuple(_parse_source_ref(r, sources, where) for r in refs),
                checks=tuple(_parse_check(c, where) for c in ours), verdict=raw['verdict'],
                ours_text=raw.get('ours_text', ''), reason=raw.get('reason', ''),
                switch=raw.get('switch', '')))
        absent = [s for s in required if s not in seen]
        if absent:
            raise AuditTableError(f'{path}: {name}: required settings without a record: '
                                  f'{absent}')
    return AuditTable(title=data['title'], intro=data['intro'], required_settings=required,
                      sources=sources, official_configs=official, configs=configs,
                      records=tuple(records))


def resolve(cfg: Mapping, key: str, name: str = '') -> Any:
    """The value at ``key`` in a config dict, or :data:`MISSING`.

    Args:
        cfg (Mapping): The loaded config (``Config.to_dict()`` or a ``ConfigDict``).
        key (str): Key path (module docstring).
        name (str): Config file name, for the ``@name.*`` keys.

    Returns:
        Any: The value, or :data:`MISSING` when a step does not exist.
    """
    if key.startswith('@'):
        match = _NAME_RE.search(name)
        if key in ('@name.gpus', '@name.batch'):
            if not match:
                return MISSING
            return int(match.group(1 if key == '@name.gpus' else 2))
        if key == '@total_batch':
            gpus = resolve(cfg, '@name.gpus', name)
            batch = resolve(cfg, 'train_dataloader.batch_size', name)
            return MISSING if MISSING in (gpus, batch) else gpus * batch
        raise AuditTableError(f'unknown pseudo key {key!r}; accepted: @name.gpus, '
                              '@name.batch, @total_batch')
    node: Any = cfg
    for name_part, selector in _SEGMENT_RE.findall(key):
        if name_part:
            if not isinstance(node, Mapping) or name_part not in node:
                return MISSING
            node = node[name_part]
            continue
        if selector.lstrip('-').isdigit():
            index = int(selector)
            if not isinstance(node, (list, tuple)) or not -len(node) <= index < len(node):
                return MISSING
            node = node[index]
            continue
        field_name, _, wanted = selector.partition('=')
        items = node if isinstance(node, (list, tuple)) else [node]
        found = [it for it in items
                 if isinstance(it, Mapping) and str(it.get(field_name)) == wanted]
        if not found:
            return MISSING
        node = found[0]
    return node


def _canon(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    a, b = _canon(a), _canon(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_config(cfg: Mapping, records: Sequence[Record], name: str) -> List[str]:
    """Evaluate the checks of ``records`` on one loaded config.

    Args:
        cfg (Mapping): The loaded config.
        records (Sequence[Record]): The records of this config.
        name (str): Its file name (for ``@name.*`` keys and the messages).

    Returns:
        List[str]: One message per check that fails (empty when the config matches).
    """
    problems = []
    for rec in records:
        for check in rec.checks:
            got = resolve(cfg, check.key, name)
            if check.absent:
                if got is not MISSING:
                    problems.append(f'{name}: {rec.setting}: {check.key} must not be set '
                                    f'(audited), but is {got!r}')
                continue
            if got is MISSING and check.default is not MISSING:
                got = check.default
            if got is MISSING or not _same(got, check.value):
                problems.append(f'{name}: {rec.setting}: {check.key} is {got!r}, the audit '
                                f'says {check.value!r} (verdict {rec.verdict}); update the '
                                'config or the audit table and its page together')
    return problems


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, float):
        return repr(value)
    return str(_canon(value))


def _cell(text: str) -> str:
    return ' '.join(str(text).split()).replace('|', '\\|')


def render_markdown(table: AuditTable) -> str:
    """The page ``docs/recipe_audit.md`` for ``table`` (deterministic)."""
    out: List[str] = [
        '<!-- Generated by tools/misc/render_recipe_audit.py from '
        'configs/scalekd/recipe_audit.yml; do not edit by hand. -->', '',
        f'# {table.title}', '', table.intro.strip(), '', '## Verdicts', '']
    out += [
        '- **same**: ours equals the official value.',
        '- **fixed**: ours differed, or the official config could not run as released; '
        'it now follows the official recipe (or the smallest runnable reading of it).',
        '- **deliberate**: a difference we keep, with its reason and, where one exists, the '
        'switch that restores the official behaviour.',
        '- **disagreement**: official sources disagree with each other; the reason says '
        'which, and what we follow.',
        '- **unverified**: the official file that holds the value is not in the stored copy '
        'of the official repository this audit was made from; the reason says what we use.',
        '', '## Summary', '',
        '| Config | ' + ' | '.join(VERDICTS) + ' |',
        '|---|' + '---:|' * len(VERDICTS)]
    for name in table.configs:
        recs = table.records_for(name)
        counts = [sum(r.verdict == v for r in recs) for v in VERDICTS]
        out.append(f'| [{name}](#{_anchor(name)}) | ' + ' | '.join(map(str, counts)) + ' |')
    out += ['', '### Every difference (all verdicts other than *same*)', '',
            'Rows that are the same for several configs are listed once.', '',
            '| Configs | Setting | Verdict | Official | Ours | Reason | Switch |',
            '|---|---|---|---|---|---|---|']
    groups: Dict[Tuple[str, ...], List[str]] = {}
    for rec in table.records:
        if rec.verdict != 'same':
            key = (rec.setting, rec.verdict, rec.official, rec.ours(), rec.reason, rec.switch)
            groups.setdefault(key, []).append(rec.config)
    for (setting, verdict, official, ours, reason, switch), names in groups.items():
        where = f'all {len(names)}' if len(names) == len(table.configs) else ', '.join(
            n.replace('.py', '') for n in names)
        out.append('| ' + ' | '.join(_cell(x) for x in (
            where, setting, verdict, official, ours, reason, switch or '-')) + ' |')
    out += ['', '## The official distiller configs', '',
            'The official history holds 17 distiller configs under `configs/distillers/`. '
            'Each maps to one config of ours or says why none does.', '',
            '| Official config | In commits | Ours | Note |', '|---|---|---|---|']
    for oc in table.official_configs:
        ours = f'[{oc.ours}](../configs/scalekd/{oc.ours})' if oc.ours else 'none'
        out.append('| ' + ' | '.join(_cell(x) for x in (
            f'`{oc.path}`', oc.present, ours, oc.note or '-')) + ' |')
    for name, official in table.configs.items():
        out += ['', f'## {name}', '', f'Config: [configs/scalekd/{name}]'
                f'(../configs/scalekd/{name}). Official counterpart: {official}', '',
                '| Setting | Official | Source | Ours | Verdict |', '|---|---|---|---|---|']
        for rec in table.records_for(name):
            verdict = rec.verdict
            if rec.reason:
                verdict += f': {rec.reason.rstrip(".")}.'
            if rec.switch:
                verdict += f' Switch: {rec.switch}'
            out.append('| ' + ' | '.join(_cell(x) for x in (
                rec.setting, rec.official, '; '.join(f'`{c}`' for c in rec.cites()),
                rec.ours(), verdict)) + ' |')
    out += ['', '## Sources', '',
            'Lines refer to the file at the commit given. How each file was read: '
            '**direct** from the official repository at that commit; **blob** from the stored '
            'text of the same path in a later copy of the first author\'s tree (the stored '
            'index of public code lists the path there, not under the official repository; '
            'that the text is the official file\'s is inferred, not checked, so open the '
            'official file to confirm); **stock** from the upstream file the official code '
            'inherits (its own copy is not in the stored index).', '',
            '| Id | File | Read | Note |', '|---|---|---|---|']
    for src in table.sources.values():
        out.append('| ' + ' | '.join(_cell(x) for x in (
            src.id, f'`{src.cite()}`', src.read, src.note or '-')) + ' |')
    return '\n'.join(out) + '\n'


def _anchor(title: str) -> str:
    """GitHub's heading anchor for ``title``."""
    text = title.strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')
