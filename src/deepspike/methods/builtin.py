"""Importing this module registers every built-in method (the converted-SNN method lives in conversion)."""

from deepspike.conversion import method as _converted  # noqa: F401
from deepspike.methods import ann, spikebp, stbp, stdbp, ttfs  # noqa: F401
