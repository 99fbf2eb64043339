"""Building blocks shared by the methods' networks."""

from deepspike.layers.containers import ConcatBranches, ResidualBlock
from deepspike.layers.dropout import TimeFixedDropout
from deepspike.layers.time_distributed import TimeDistributed

__all__ = ["ConcatBranches", "ResidualBlock", "TimeDistributed", "TimeFixedDropout"]
