"""Export: NIR (Neuromorphic Intermediate Representation) export and import (extra ``deepspike[nir]``).

``to_nir(model, input_shape, dt, fold_thresholds)`` -> ``nir.NIRGraph``; ``write_nir(graph, path)``;
``export_run(run_dir, path)`` (the ``deepspike export`` command); ``from_nir(path | graph)`` ->
:class:`NirNetwork` running ``[T, B, ...]`` inputs with deepspike's own neurons. The nir package is
imported only inside these functions, so ``import deepspike.export`` works without it.
"""

from deepspike.export.nir_export import DEFAULT_DT, check_finite, export_run, to_nir, write_nir
from deepspike.export.nir_import import NirNetwork, from_nir, read_nir

__all__ = ["DEFAULT_DT", "NirNetwork", "check_finite", "export_run", "from_nir", "read_nir", "to_nir",
           "write_nir"]
