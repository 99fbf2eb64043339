"""deepspike's public API: everything a user script needs, in one namespace (re-exported by ``deepspike``).

Runs (``train``, ``evaluate``, ``load_run``, ``reproduce``), conversion (``convert``), measurement and export
(``analyze``, ``compare``, ``timestep_sweep``, ``export``), models and methods (``create_model``,
``create_architecture``, ``model_table``, ``method_table``, ``dataset_names``), and the building blocks for one's
own training loop: the rate neurons (``IF``, ``LIF``, ``LeakCorrectedLIF``, ``LearnableLIF`` (PLIF), ``PSN``,
``MaskedPSN``, ``SlidingPSN``, ``SynapticLIF``, ``AdaptiveLIF``, ``HeterogeneousLIF`` (fixed per-neuron constants);
time-first ``[T, B, ...]`` tensors), input encoders and decoders, ``TimeDistributed``, and the closed-form TTFS
layers (``TTFSLinear``, ``TTFSConv2d``, pooling, ``TTFSInput``, ``ttfs_loss``; spike-time tensors ``[B, ...]``
with ``+inf`` = no spike), ``Stream``: a rate-coded network run one time step at a time on live input, spike
rasters and membrane traces of one's own net on one sample (``record_raster``, ``record_traces``,
``plot_raster``, ``plot_traces``), and the shipped pretrained models (``zoo``, ``pretrained``).
The command-line tool (``deepspike.commands``) calls only this API, ``config`` and ``core``.
"""

from deepspike.analysis.plots import plot_raster, plot_traces
from deepspike.analysis.raster import record_raster
from deepspike.analysis.traces import record_traces
from deepspike.api.catalog import dataset_names, method_table, model_table
from deepspike.api.conversion import CONVERSION_NORMS, convert, convert_to_ttfs
from deepspike.api.reports import (
    AnalysisOptions,
    analyze,
    compare,
    evaluate_nir,
    export,
    export_pretrained,
    spike_activity,
    timestep_sweep,
)
from deepspike.api.training import (
    check_pretrained,
    evaluate,
    load_run,
    pretrained,
    reproduce,
    train,
    zoo,
    zoo_card,
)
from deepspike.coding import direct, first_spike_class, rate_bipolar, rate_poisson, spike_count
from deepspike.coding.encoder import InputEncoder
from deepspike.coding.ttfs_input import TTFSInput, encode_times
from deepspike.config import RunConfig, load_config
from deepspike.core.errors import (
    ConfigError,
    DataCorruptError,
    DataNotFoundError,
    TrainingDiverged,
    UserError,
    WriteError,
)
from deepspike.core.version import __version__
from deepspike.layers import TimeDistributed
from deepspike.layers.qcfs import QCFS
from deepspike.methods import Method, create_model, get_method, register_encoder, register_method, register_neuron
from deepspike.methods.streaming import Stream
from deepspike.models import Architecture, create_architecture, register_model
from deepspike.neurons import IF, LIF, NeuronParams, get_surrogate
from deepspike.neurons.adaptive import AdaptiveLIF
from deepspike.neurons.heterogeneous import HeterogeneousLIF
from deepspike.neurons.learnable import LearnableLIF
from deepspike.neurons.masked_psn import MaskedPSN
from deepspike.neurons.psn import PSN
from deepspike.neurons.sliding_psn import SlidingPSN
from deepspike.neurons.spikebp_lif import LeakCorrectedLIF
from deepspike.neurons.surrogate import register_surrogate
from deepspike.neurons.synaptic import SynapticLIF
from deepspike.ttfs import avg_pool_times, max_pool_times, spike_times, spike_times_conv2d
from deepspike.ttfs.layers import TTFSAvgPool2d, TTFSConv2d, TTFSDropout, TTFSLinear, TTFSMaxPool2d
from deepspike.ttfs.losses import ttfs_loss

__all__ = [
    "__version__", "AnalysisOptions", "analyze", "Architecture", "avg_pool_times", "compare", "ConfigError",
    "CONVERSION_NORMS",
    "convert", "convert_to_ttfs", "create_architecture", "create_model", "DataCorruptError", "DataNotFoundError",
    "dataset_names",
    "direct", "encode_times", "evaluate", "evaluate_nir", "export", "first_spike_class", "get_method",
    "get_surrogate", "IF",
    "InputEncoder", "LeakCorrectedLIF", "QCFS", "LIF", "load_config", "load_run", "max_pool_times", "Method",
    "method_table", "model_table", "NeuronParams", "rate_bipolar", "rate_poisson", "register_method",
    "register_model", "register_neuron", "register_encoder", "register_surrogate", "reproduce", "RunConfig",
    "spike_activity",
    "spike_count", "spike_times",
    "spike_times_conv2d", "Stream", "TimeDistributed", "timestep_sweep", "train", "TrainingDiverged", "ttfs_loss",
    "TTFSAvgPool2d",
    "TTFSConv2d",
    "TTFSDropout", "TTFSInput", "TTFSLinear", "TTFSMaxPool2d", "UserError", "WriteError", "zoo", "zoo_card",
    "export_pretrained",
    "pretrained", "check_pretrained", "LearnableLIF", "PSN", "MaskedPSN", "SlidingPSN", "SynapticLIF", "AdaptiveLIF",
    "HeterogeneousLIF",
    "record_raster",
    "record_traces", "plot_raster", "plot_traces",
]
