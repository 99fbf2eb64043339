"""Importing this module registers every built-in method."""

from deepspike.methods import ann, stbp  # noqa: F401
