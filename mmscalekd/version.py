"""Version of mmscalekd."""

__version__ = '0.1.0'
