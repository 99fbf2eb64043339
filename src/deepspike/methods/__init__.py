"""Training methods: each builds, runs and scores networks from an architecture spec."""

from deepspike.methods.base import Method
from deepspike.methods.registry import get_method, list_methods, register_method

__all__ = ["Method", "get_method", "list_methods", "register_method"]
