"""The package version (read by setuptools at build time, exported as ``deepspike.__version__``)."""

__version__ = "0.2.0.dev0"
