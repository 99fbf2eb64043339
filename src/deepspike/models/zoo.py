"""Importing this module registers every built-in model family."""

from deepspike.models import small  # noqa: F401
