"""deepspike: train, convert, analyse and export deep spiking neural networks.

``import deepspike as ds`` gives the public API (``deepspike.api``): ``ds.train``, ``ds.evaluate``,
``ds.load_run``, ``ds.convert``, ``ds.analyze``, ``ds.export``, ``ds.create_model``, the neurons (``ds.LIF``,
``ds.IF``) and the closed-form TTFS layers (``ds.TTFSLinear``, ``ds.TTFSConv2d``), and ``ds.__version__``.
"""

from deepspike.api import *  # noqa: F403
from deepspike.api import __all__, __version__  # noqa: F401
