"""Importing this module registers every built-in model family."""

from deepspike.models import (  # noqa: F401
    batchnorm_nets,
    direct_training,
    lee2020,
    sengupta2019,
    sequence,
    small,
    transformer,
    wu2019,
    zhang2021,
    zhou2021,
)
