"""Models: distillers, connectors (projectors), losses, teacher adapters, backbones."""
from . import backbones, connectors, data_preprocessors, distillers, losses, teachers  # noqa: F401
