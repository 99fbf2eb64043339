"""Score a rate-coded NIR file on a data set: ``deepspike eval MODEL.nir --data NAME``.

The file alone says how its input is made when deepspike wrote it (graph metadata ``encoder``, ``timesteps``, the
coding's options, ``input_mean`` / ``input_std`` when the run standardised its data, ``val_fraction`` and
``split_seed`` when it held out a validation split (``split="val"`` is that split), ``data_args`` when it set the
data set's own options (an event set's frames: ``timesteps``, ``stride``, ...) and ``eval_batch_size`` when it
scored in batches of another size than the default (a random encoder draws per batch) (these three read only on the
data set the run used), and ``decode``); a file from
another tool says none of it, so ``coding`` and ``timesteps`` are then given by the caller and the images go in
as the data set gives them (in [0, 1]). Each batch ``x [B, *sample]`` is coded to ``[T, B, ...]`` by the encoder a
run would build (``methods.encoder_choice.make_encoder``; a converted net's signed Poisson input with its scale),
run through ``from_nir``'s network and decoded as the graph's ``decode`` says (a file that does not say: ``membrane``
for an ``LI`` / ``I`` readout, ``nir_import.readout_decode``, else ``rate``)::

    rate      class = argmax_k sum_t s_t[k]                      (output spikes [T, B, K])
    membrane  class = argmax_k v_T[k]                            (the LI / I output's membrane trace [T, B, K])
    vote      class = argmax_c sum_t sum_{k in group c} s_t[k]   (K = G * num_classes neurons, G per class;
                                                                  num_classes: the data set's when the file
                                                                  does not say)

in an ``eval_pass`` with the evaluation seed, so a deepspike run and its exported file draw the same Poisson input
and score the same (tested).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from deepspike.config import load_config
from deepspike.config.schema import SET_ELSEWHERE
from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import is_finite, is_whole, shown_value
from deepspike.data import list_datasets
from deepspike.data.augment import normalize
from deepspike.deploy.nir_import import from_nir
from deepspike.methods.converted_network import SignedPoissonEncoder
from deepspike.methods.encoder_choice import encoder_names, make_encoder
from deepspike.methods.stbp import StbpOptions
from deepspike.training.evaluate import check_timesteps_fit, eval_pass, limit_samples
from deepspike.training.run_setup import load_data, make_batches

DECODES = ("rate", "membrane", "vote")
DATA_ARGS_CHARS = 10_000
"""The longest metadata ``data_args`` text read (a run's data set options take a few hundred characters)."""
CODING_OPTIONS = ("delta_threshold", "delta_mode", "delta_off_spikes", "population_size", "population_low",
                  "population_high", "population_width", "population_spikes")
SWITCHES = ("delta_off_spikes", "population_spikes")
"""The coding options that are true or false, which ``to_nir`` writes as 1 or 0."""


def coding_name(meta: dict[str, Any], coding: str | None = None) -> str | None:
    """``coding`` when given, else the graph's input coding (metadata ``coding``, else ``encoder``), else None."""
    return coding if coding is not None else meta.get("coding", meta.get("encoder"))


def nir_encoder(meta: dict[str, Any], coding: str | None = None) -> nn.Module:
    """The encoder of a graph's metadata (``encoder``, or an Input node's ``coding``, and its options), or of
    ``coding`` when given; a one-line ``ConfigError`` when neither names one that deepspike builds. An option the
    file does not state (another tool's file, ``--encoder delta``) is ``method.encoder``'s default
    (``methods.stbp.StbpOptions``); a switch written as 1 or 0 is true or false."""
    name = coding_name(meta, coding)
    if name is None:
        raise ConfigError("the NIR file does not say how its input is coded (no metadata 'encoder'): pass --encoder")
    if not isinstance(name, str) or name not in encoder_names():  # a file's array: "truth value ... is ambiguous"
        raise ConfigError(f"input coding {shown_value(name)} is not one deepspike builds; valid: "
                          f"{', '.join(encoder_names())}")
    scale, value = meta.get("bipolar_scale", 1.0), meta.get("bipolar_value", 1.0)
    if not (is_finite(scale) and is_finite(value)):  # a text ended in float()'s ValueError
        raise ConfigError(f"the NIR file's metadata bipolar_scale and bipolar_value must be numbers, got "
                          f"{shown_value(scale)} and {shown_value(value)}")
    scale, value = float(scale), float(value)
    if name == "bipolar" and (scale, value) != (1.0, 1.0):
        return SignedPoissonEncoder(scale, weighted=value == scale)
    defaults = StbpOptions()
    options = {k: meta.get(k, getattr(defaults, k)) for k in CODING_OPTIONS}
    options.update({k: bool(options[k]) for k in SWITCHES if is_whole(options[k], 0, 1)})
    return make_encoder(SimpleNamespace(encoder=name, **options))


def decided_class(out: torch.Tensor, decode: str, num_classes: int | None = None) -> torch.Tensor:
    """The class ``[B]`` of the graph's output ``out [T, B, K]`` under ``decode`` (module docstring)."""
    if decode == "membrane":
        return out[-1].argmax(dim=1)
    counts = out.sum(dim=0)  # [B, K]
    if decode == "vote":
        if not (num_classes and counts.shape[1] % num_classes == 0):
            raise ConfigError(f"decode 'vote' needs num_classes dividing the {counts.shape[1]} output neurons, "
                              f"got {num_classes!r}")
        counts = counts.reshape(counts.shape[0], num_classes, -1).sum(dim=2)
    return counts.argmax(dim=1)


def _steps(meta: dict[str, Any], timesteps: int | None) -> int:
    steps = timesteps if timesteps is not None else meta.get("timesteps")
    if steps is None or (timesteps is None and isinstance(steps, int | float) and steps == 0):  # 0: not known
        raise ConfigError("the NIR file does not say how many time steps it runs (no metadata 'timesteps'): pass "
                          "--timesteps")
    if not is_whole(steps, 1, 1_000_000):  # a file's value was reported as "--timesteps", given or not
        what = "--timesteps" if timesteps is not None else "the NIR file's metadata timesteps"
        raise ConfigError(f"{what} must be a whole number from 1 to 1,000,000, got {shown_value(steps)}"
                          + ("" if timesteps is not None else ": pass --timesteps"))
    return int(steps)


def _test_batches(dataset: str, split: str, meta: dict[str, Any]) -> tuple[int, Any]:
    """``(classes, batches)``: the number of classes of ``dataset`` and the batches of its ``split`` as a run with
    the default recipe reads them, standardised with the graph's ``input_mean`` / ``input_std`` when it has them;
    on the data set the file's run used, with that run's ``val_fraction`` and split seed when it held out a
    validation split (the ``val`` split it saw)."""
    if dataset not in list_datasets():  # checked before it goes into an override, where '${oc.env:HOME}' was
        raise unknown_choice("dataset", dataset, list_datasets())  # resolved and shown ("unknown dataset '/root'")
    overrides = [f"data.name={dataset}"]
    same = isinstance(meta.get("dataset"), str) and meta["dataset"] == dataset  # not a file's array (ambiguous)
    if same and "val_fraction" in meta:
        overrides += _split_overrides(meta)
    if same and "eval_batch_size" in meta:  # the run's batches: a random encoder draws per batch
        size = meta["eval_batch_size"]
        if not is_whole(size, 1, 1_000_000):
            raise ConfigError(f"the NIR file's metadata eval_batch_size must be a whole number from 1 to 1,000,000, "
                              f"got {shown_value(size)}")
        overrides.append(f"train.eval_batch_size={int(size)}")
    config = load_config(None, overrides)
    if same and "data_args" in meta:
        config = replace(config, data=replace(config.data, args=_data_args(meta["data_args"])))
    data = load_data(config)
    batches = make_batches(config, data, split, torch.device("cpu"), training=False)
    if batches is None:
        raise ConfigError(f"data set {dataset!r} has no {split} split")
    stats = _input_stats(meta)
    return int(data.num_classes), ((x if stats is None else normalize(x, *stats), y) for x, y in batches)


def _data_args(text: Any) -> dict[str, Any]:
    """The file's metadata ``data_args`` (``nir_export.run_info``: JSON text of the run's ``data.args``, the data set's
    own options such as an event set's ``timesteps`` and ``stride``) as a dict, else a one-line ``ConfigError``: it
    must be a JSON object of at most ``DATA_ARGS_CHARS`` characters whose values are texts, finite numbers, true,
    false, null or lists of those (the data set's loader then checks names and values as for ``data.args``)."""
    args = None
    if isinstance(text, str) and len(text) <= DATA_ARGS_CHARS:
        try:
            args = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            args = None
    if not (isinstance(args, dict) and all(_plain(v) or isinstance(v, list) and all(map(_plain, v))
                                           for v in args.values())):
        raise ConfigError("the NIR file's metadata data_args must be JSON text of its run's data.args (an object of "
                          f"texts, finite numbers, true, false, null or lists of those), got {shown_value(text)}")
    clash = sorted(set(args) & set(SET_ELSEWHERE))
    if clash:
        raise ConfigError(f"the NIR file's metadata data_args may not set {clash[0]} (not a data set option)")
    return args


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a finite number")


def _plain(value: Any) -> bool:
    """``value`` is a text, a finite number, true, false or null (a JSON number beyond float's range is inf)."""
    return value is None or isinstance(value, str | bool) or is_finite(value)


def _input_stats(meta: dict[str, Any]) -> tuple[list[float], list[float]] | None:
    """The graph's metadata ``(input_mean, input_std)`` as lists of floats, None when it has neither; a one-line
    ``ConfigError`` when one is missing or either is not a list of numbers (a text ended in torch's TypeError
    "new(): invalid data type 'str'", a mean without a std in "must be real number, not NoneType")."""
    mean, std = meta.get("input_mean"), meta.get("input_std")
    if mean is None and std is None:
        return None
    stats = []
    for key, values in (("input_mean", mean), ("input_std", std)):
        a = np.asarray(values) if isinstance(values, list | tuple | np.ndarray) else None
        if a is None or a.ndim != 1 or a.size == 0 or a.dtype.kind not in "iuf":
            raise ConfigError(f"the NIR file's metadata {key} must be a list of numbers, one per input channel, "
                              f"given with {'input_std' if key == 'input_mean' else 'input_mean'}; got "
                              f"{shown_value(values)}")
        stats.append([float(v) for v in a])
    return stats[0], stats[1]


def _split_overrides(meta: dict[str, Any]) -> list[str]:
    """The recipe keys of the file's validation split: its metadata ``val_fraction`` (a number in [0, 1)) and
    ``split_seed`` (a whole number in [0, 2**63 - 1]; default 0), else a one-line ``ConfigError`` naming the field
    (numbers only: a text such as ``${oc.env:HOME}`` was resolved by the recipe loader and echoed back)."""
    fraction, seed = meta["val_fraction"], meta.get("split_seed", 0)
    if not (is_finite(fraction) and 0 <= fraction < 1):
        raise ConfigError(f"the NIR file's metadata val_fraction must be a number in [0, 1), got {fraction!r}")
    if not is_whole(seed, 0, 2**63 - 1):
        raise ConfigError(f"the NIR file's metadata split_seed must be a whole number in [0, 2**63 - 1], got {seed!r}")
    return [f"data.val_fraction={float(fraction)!r}", f"train.seed={int(seed)}"]


def flat_when_flat(x: torch.Tensor, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Samples ``x [B, *sample]`` as ``[B, N]`` for a graph whose input is flat, ``[N]`` with ``N`` the values of a
    sample (another tool's MLP on images: snnTorch, Norse, SpikingJelly and Sinabs nets take ``[64]`` for an 8 x 8
    image, flattened row by row as ``torch.flatten`` does); else ``x`` as it is (a shape that does not fit is the
    net's one-line error)."""
    if len(input_shape) == 1 and x.dim() > 2 and x[0].numel() == input_shape[0]:
        return x.flatten(1)
    return x


def check_outputs(out: torch.Tensor, decode: str, classes: int, num_classes: Any = None) -> None:
    """A one-line ``ConfigError`` unless the graph's output ``out`` is ``[T, B, K]`` with one neuron per class of
    the data set (``K = classes``), or for ``decode`` vote a file whose ``num_classes`` is the data set's (``K = G *
    classes``, checked by :func:`decided_class`): a net of another class count would be scored as if its neurons
    were the data set's classes."""
    if out.dim() != 3:
        raise ConfigError(f"the NIR file's output must be [T, B, K] (one value per class), got {tuple(out.shape)}")
    have = num_classes if decode == "vote" else out.shape[2]
    if have != classes and have is not None:  # a vote file without num_classes: decided_class says so
        what = "votes for" if decode == "vote" else "has output neurons for"
        raise ConfigError(f"the NIR file {what} {have!r} classes, but the data set has {classes}")


def _votes_for(meta: dict[str, Any], classes: int) -> int:
    """The classes a file's output neurons vote for: its metadata ``num_classes``, else (a vote file that does not
    say) the data set's ``classes``; a one-line ``ConfigError`` unless a whole number >= 1 (10.0 from a file ended in
    torch's TypeError "reshape(): argument 'shape' failed to unpack", the text "10" in "votes for '10' classes")."""
    votes_for = meta.get("num_classes", classes)
    if not is_whole(votes_for, 1):
        raise ConfigError(f"the NIR file's metadata num_classes must be a whole number >= 1, got "
                          f"{shown_value(votes_for)}")
    return int(votes_for)


def evaluate_nir(source: str | os.PathLike, dataset: str, split: str = "test", timesteps: int | None = None,
                 coding: str | None = None, dt: float | None = None, limit: int | None = None) -> dict[str, Any]:
    """Accuracy of the rate-coded NIR file ``source`` on ``split`` of ``dataset`` (module docstring):
    ``{"accuracy", "samples", "timesteps", "coding", "decode", "nir"}``. ``timesteps`` and ``coding`` override the
    file's; ``dt`` as ``from_nir``; ``limit``: the first samples only."""
    net = from_nir(source, dt)
    meta = net.metadata
    encoder, steps = nir_encoder(meta, coding), _steps(meta, timesteps)
    decode = str(meta.get("decode", "rate"))
    if decode not in DECODES:
        raise ConfigError(f"the NIR file's decode {decode!r} is not one of {', '.join(DECODES)}")
    if limit is not None and not is_whole(limit, 1):
        raise ConfigError(f"--limit must be a whole number >= 1, got {limit!r}")
    correct = n = 0
    classes, batches = _test_batches(dataset, split, meta)
    votes_for = _votes_for(meta, classes) if decode == "vote" else None
    with eval_pass(encoder):
        for x, y in limit_samples(batches, limit):
            check_timesteps_fit(x, steps, getattr(encoder, "widening", 1))  # before [T, B, ...] is drawn
            out = net(encoder(flat_when_flat(x, net.input_shape), steps))
            check_outputs(out, decode, classes, votes_for)
            correct += int((decided_class(out, decode, votes_for) == y).sum())
            n += len(y)
    return {"accuracy": correct / n if n else None, "samples": n, "timesteps": steps,
            "coding": coding_name(meta, coding), "decode": decode, "nir": os.fspath(source)}
