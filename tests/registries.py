"""Registrations that end with the test: the model, method and data-set registries are copies for its duration, so
a name a test registers is not listed by later tests of the process (docs tests compare the lists with the pages)."""

from deepspike.data import registry as data_registry
from deepspike.methods import registry as methods_registry
from deepspike.models import registry as models_registry


def keep_registrations_to_the_test(monkeypatch) -> None:
    for module, name in ((models_registry, "_MODELS"), (methods_registry, "_METHODS"), (data_registry, "_LOADERS"),
                         (data_registry, "_SHAPES")):
        monkeypatch.setattr(module, name, dict(getattr(module, name)))
