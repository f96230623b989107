"""Models: distillers, connectors (projectors), losses, teacher adapters, backbones."""
from . import backbones, connectors, distillers, losses, teachers  # noqa: F401
from . import data_preprocessors  # noqa: F401
