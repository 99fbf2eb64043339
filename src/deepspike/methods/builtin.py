"""Importing this module registers every built-in method."""

from deepspike.methods import ann, spikebp, stbp, stdbp, ttfs  # noqa: F401
