"""Build everything a run needs from its config: method, architecture, model and data."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deepspike.config.schema import RunConfig
from deepspike.core.errors import ConfigError
from deepspike.data import Augment, BatchIterator, DataSplits, as_augment, load_dataset
from deepspike.data.frame_augment import check_counts
from deepspike.methods import Method
from deepspike.methods.registry import method_from_options
from deepspike.models import Architecture, create_architecture
from deepspike.models.costs import count_parameters
from deepspike.training.runtime import check_parameters_fit


@dataclass
class RunParts:
    method: Method
    arch: Architecture
    model: torch.nn.Module
    data: DataSplits


def load_data(config: RunConfig) -> DataSplits:
    d = config.data
    return load_dataset(
        d.name,
        data_dir=d.data_dir,
        val_fraction=d.val_fraction,
        seed=config.train.seed,
        download=d.download,
        **d.args,
    )


def build_run(config: RunConfig, device: torch.device, data: DataSplits | None = None) -> RunParts:
    """Method (from the config's already validated options), architecture (shaped by the data), and the model
    on ``device``."""
    data = data if data is not None else load_data(config)
    method, arch = method_and_architecture(config, data.num_classes, tuple(data.input_shape))
    steps = data.steps_per_sample()
    if steps is not None and not method.reads_sequences:
        encoder = getattr(method.options, "encoder", None)
        reader = f"method {method.name!r}" + (f" with encoder {encoder!r}" if isinstance(encoder, str) else "")
        raise ConfigError(f"data {config.data.name!r} holds {steps} steps per sample ({list(data.input_shape)} each), "
                          f"which {reader} does not read: train it with stbp and method.encoder frames, delta or "
                          f"population")
    check_parameters_fit(count_parameters(method.built_architecture(arch)), device,
                         f"model {arch.name} at width {config.model.width:g}")
    return RunParts(method, arch, method.build(arch).to(device), data)


def method_and_architecture(config: RunConfig, num_classes: int, input_shape: tuple[int, ...]):
    """``(method, architecture)`` of ``config`` for data of ``num_classes`` classes and samples ``input_shape``."""
    method = method_from_options(config.method.name, config.method.options)
    arch = create_architecture(config.model.name, num_classes=num_classes, input_shape=method.input_shape(input_shape),
                               width=config.model.width, **config.model.args)
    return method, arch



def make_batches(
    config: RunConfig, data: DataSplits, split: str, device: torch.device, rank: int = 0, world_size: int = 1,
    training: bool = True,
) -> BatchIterator | None:
    """The batch iterator of ``split`` ("train", "val", "test"); None when the split is absent. The training split
    is shuffled and augmented (``data.augment``), but not augmented with ``training=False`` (scoring on it)."""
    dataset = getattr(data, split)
    if dataset is None:
        return None
    train = split == "train"
    normalize = (data.mean, data.std) if config.data.normalize else None
    augment = as_augment(config.data.augment) if train and training else None
    if isinstance(augment, Augment):
        augment.check_sample_shape(data.input_shape, data.steps_per_sample())
        if augment.drop_event and len(dataset):  # refused now, not at the first batch, when inputs are not counts
            check_counts(torch.as_tensor(dataset[0][0]).float())
    return BatchIterator(
        dataset,
        batch_size=config.train.batch_size if train else config.train.eval_batch_size,
        shuffle=train,
        seed=config.train.seed,
        drop_last=False,
        augment=augment,
        normalize=normalize,
        device=device,
        rank=rank,
        world_size=world_size,
        num_workers=config.data.num_workers,
    )
