"""Data set registry: ``load_dataset(name, ...)`` and the ``register_dataset`` decorator."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from deepspike.core.errors import ConfigError, unknown_choice
from deepspike.core.options import INT64_MAX, is_finite, is_whole
from deepspike.core.registration import check_registration
from deepspike.data.splits import DataSplits

Loader = Callable[..., DataSplits]
Shape = Callable[..., "tuple[tuple[int, ...], int] | None"]
_LOADERS: dict[str, Loader] = {}
_SHAPES: dict[str, Shape] = {}
_COMMON = ("data_dir", "val_fraction", "seed", "download")


def register_dataset(name: str, shape: Shape | None = None) -> Callable[[Loader], Loader]:
    """Register ``fn(data_dir, val_fraction, seed, download, **options) -> DataSplits`` under ``name``. ``shape``:
    ``shape(**options) -> (input_shape, num_classes)`` of the ``DataSplits`` the loader gives for its own options (the
    loader's defaults filled in), known without reading the samples (None from it for options the loader refuses);
    leave it out where only reading tells (``declared_shape``).

    >>> @register_dataset("my_data")          # doctest: +SKIP
    ... def load_my_data(data_dir, val_fraction, seed, download, size=32): ...
    """

    def wrap(fn: Loader) -> Loader:
        check_registration("dataset", name, _LOADERS.get(name), fn)
        _check_loader(name, fn)
        _LOADERS[name] = fn
        if shape is None:
            _SHAPES.pop(name, None)
        else:
            _SHAPES[name] = shape
        return fn

    return wrap


def fixed_shape(input_shape: tuple[int, ...], num_classes: int) -> Shape:
    """``register_dataset``'s ``shape`` of a data set whose options do not change it."""
    return lambda **_: (input_shape, num_classes)


def _check_loader(name: str, fn: Loader) -> None:
    """``TypeError`` unless ``fn`` can be called with the common arguments (:data:`_COMMON`) by name."""
    if not callable(fn):
        raise TypeError(f"register_dataset({name!r}) takes a loader function, got {fn!r}")
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    missing = [c for c in _COMMON if c not in params and not takes_any]
    if missing:
        raise TypeError(f"register_dataset({name!r}): the loader must take {', '.join(_COMMON)}; "
                        f"{getattr(fn, '__name__', repr(fn))} lacks {', '.join(missing)}")


def check_common(val_fraction: object, seed: object, download: object) -> None:
    """A one-line ``ConfigError`` unless ``val_fraction`` is a number in [0, 1), ``seed`` an integer from 0 to
    2**63 - 1 (as ``train.seed``) and ``download`` true or false: a string fraction crashed in a comparison
    (TypeError), a string seed in ``mix_seed`` (ValueError) or was never used, and ``download="no"`` downloaded."""
    if not (is_finite(val_fraction) and 0.0 <= val_fraction < 1.0):
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if not is_whole(seed, 0, INT64_MAX):
        raise ConfigError(f"seed must be an integer from 0 to 2**63 - 1, got {seed!r}")
    if not isinstance(download, bool):
        raise ConfigError(f"download must be true or false, got {download!r}")


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, sorted."""
    return sorted(_LOADERS)


def dataset_options(name: str, args: dict) -> dict:
    """``args`` of data set ``name`` with the defaults of the options it leaves out filled in (its loader's keyword
    defaults): two runs read the same data when these agree, e.g. ``{}`` and ``{"timesteps": 8}`` for
    ``digits_events``. ``args`` itself for an unknown name."""
    if name not in _LOADERS:
        return dict(args)
    params = inspect.signature(_LOADERS[name]).parameters.values()
    defaults = {p.name: p.default for p in params if p.name not in _COMMON and p.default is not inspect.Parameter.empty}
    return {**defaults, **args}


def declared_shape(name: object, args: object) -> tuple[tuple[int, ...], int] | None:
    """``(input_shape, num_classes)`` that data set ``name`` with options ``args`` (``data.args``) will have, as its
    registration declares it (``register_dataset``'s ``shape``), without reading the data: what a run can build its
    model at before the data is read (``training.temporal_grad.check_settings_before_data``). None where no shape is
    declared (an image folder's classes are its folders) or for a name or option the loader refuses."""
    if not isinstance(name, str) or name not in _SHAPES or not isinstance(args, dict):
        return None
    if set(args) - set(inspect.signature(_LOADERS[name]).parameters) - set(_COMMON):
        return None
    return _SHAPES[name](**dataset_options(name, args))


def load_dataset(name: str, data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
                 **kwargs) -> DataSplits:
    """Load data set ``name`` as :class:`DataSplits`.

    ``val_fraction`` of the training split (stratified, chosen by ``seed``) becomes ``val``; ``download``
    fetches missing files (with checksums) where the data set can be downloaded; ``kwargs`` are the
    data set's own options (e.g. ``size=64`` for image folders). Unknown names or options raise
    :class:`ConfigError`.
    """
    if not isinstance(name, str) or name not in _LOADERS:  # a list or dict name was a TypeError (unhashable)
        raise unknown_choice("dataset", name, _LOADERS)
    check_common(val_fraction, seed, download)
    fn = _LOADERS[name]
    options = [p for p in inspect.signature(fn).parameters if p not in _COMMON]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ConfigError(f"dataset {name!r} has no option(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(options) or '(none)'}")
    splits = fn(data_dir=data_dir, val_fraction=val_fraction, seed=seed, download=download, **kwargs)
    if not isinstance(splits, DataSplits):
        raise ConfigError(f"dataset {name!r}: its loader returned a {type(splits).__name__}, not DataSplits "
                          "(build it with deepspike.data.splits.make_splits)")
    return splits
