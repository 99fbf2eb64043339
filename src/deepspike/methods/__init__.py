"""Training methods: each builds, runs and scores networks from an architecture spec."""

from deepspike.methods import builtin  # noqa: F401, E402  (registers the built-in methods)
from deepspike.methods.base import Method
from deepspike.methods.create import create_model
from deepspike.methods.encoder_choice import register_encoder
from deepspike.methods.neuron_choice import register_neuron
from deepspike.methods.registry import check_trainable, get_method, list_methods, register_method

__all__ = ["Method", "check_trainable", "create_model", "get_method", "list_methods", "register_encoder",
           "register_method", "register_neuron"]
