"""Models: distillers, connectors (projectors), losses, teacher adapters, backbones."""
from . import backbones, connectors, distillers, losses, teachers  # noqa: F401
