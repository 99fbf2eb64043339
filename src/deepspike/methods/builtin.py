"""Importing this module registers every built-in method."""

from deepspike.methods import ann, converted, spikebp, stbp, stdbp, ttfs, ttfs_window, wta_stdp  # noqa: F401
