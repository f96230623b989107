"""Install mmscalekd; requirements live in requirements/*.txt (mmpretrain's layout)."""
import os.path as osp

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def parse_requirements(name: str) -> list:
    """Requirement lines of requirements/<name>.txt, comments and blanks dropped."""
    lines = []
    with open(osp.join(ROOT, 'requirements', name)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-r'):
                lines.append(line)
    return lines


def get_version() -> str:
    scope = {}
    with open(osp.join(ROOT, 'mmscalekd', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


setup(
    name='mmscalekd',
    version=get_version(),
    description='ScaleKD and SSLD distillation of vision backbones for OpenMMLab',
    long_description=open(osp.join(ROOT, 'README.md')).read(),
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    # registry.py evaluates `str | None` at import (3.10); CI tests 3.11.
    python_requires='>=3.10',
    classifiers=[
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'License :: OSI Approved :: Apache Software License',
    ],
    install_requires=parse_requirements('runtime.txt'),
    extras_require={
        'mim': parse_requirements('mminstall.txt'),
        'optional': parse_requirements('optional.txt'),
        'tests': parse_requirements('tests.txt'),
        'all': (parse_requirements('mminstall.txt') + parse_requirements('optional.txt')
                + parse_requirements('tests.txt')),
    },
    zip_safe=False,
)
