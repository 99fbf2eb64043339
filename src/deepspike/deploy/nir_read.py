"""Reading a NIR file that may be hostile (``read_nir``): whatever is wrong with it is one line that names it.

A NIR file is HDF5: a ``node`` group holding the graph (``type`` ``NIRGraph``, a ``nodes`` group of one group
per node, an ``edges`` dataset of ``[source, target]`` names, optional ``metadata``). ``read_nir`` reads it as
``nir.read`` does, but itself: it checks the HDF5 signature, reads only plain numbers and text (no links to
other files or objects, no external or virtual storage, no filter plugins, no references or compound types,
groups at most :data:`MAX_DEPTH` deep), checks the graph's layout and each node's fields
(:func:`nir_fields.check_fields`) before the nir package builds anything, and turns any failure into a
:class:`DataCorruptError`. HDF5 holds data only and no plugin is loaded, so nothing read runs code; what is left
to trust is libhdf5's own parsing, and the global heaps on which it would spin rather than fail are refused
before it reads them (``core.hdf5_heaps``).
"""

from __future__ import annotations

import os

import numpy as np

from deepspike.core.errors import DataCorruptError, DataNotFoundError
from deepspike.core.hdf5_heaps import damaged_global_heap
from deepspike.deploy.deps import require_nir
from deepspike.deploy.nir_fields import check_fields, shown

MAX_DEPTH = 16
"""The deepest group nesting read (a graph is 4 deep; each subgraph adds 2)."""

EXPANSION = 64
"""The most bytes the datasets of a file may declare, in multiples of the file's size (plus 1 MiB): stored as
they are, they fit the file; deflated real weights shrink by far less than this."""

FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset", 32000: "lzf"}
"""The HDF5 filters built into libhdf5 and h5py; a dataset needing another would make HDF5 load a plugin."""

BUILD_ERRORS = (AssertionError, AttributeError, IndexError, KeyError, TypeError, ValueError)
"""What the nir package's node constructors raise on fields they do not expect."""


def _line(e: BaseException) -> str:
    """The first line of an exception's message (a KeyError's without the quotes ``str`` adds)."""
    text = (str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _text(value):
    """HDF5 text (bytes) as ``str``, also inside object arrays; anything else unchanged."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return np.array([_text(v) for v in value.ravel()], dtype=object).reshape(value.shape)
    return value


def _dataset(h5py, ds, file: str, at: str, budget: list[int]):
    """The value of dataset ``ds``: numbers or text stored in the file itself and decoded by built-in filters
    (:data:`FILTERS`), within what is left of the file's read ``budget`` (bytes, :data:`EXPANSION` times the
    file's size: a dataset declared larger than its stored chunks, or deflated from zeros, would make numpy allocate
    gigabytes for a file of kilobytes), else ``DataCorruptError``."""
    declared = ds.size * ds.dtype.itemsize
    if declared > budget[0]:
        raise DataCorruptError(f"{file}: {at} declares {declared:,} bytes, more than {EXPANSION} times what the file "
                               f"holds; it is not read")
    budget[0] -= declared
    if ds.is_virtual or ds.external:
        raise DataCorruptError(f"{file}: {at} points at data outside the file, which is not read")
    plist = ds.id.get_create_plist()
    plugins = sorted({plist.get_filter(i)[0] for i in range(plist.get_nfilters())} - set(FILTERS))
    if plugins:
        raise DataCorruptError(f"{file}: {at} needs HDF5 filter plugin(s) {plugins}, which are not loaded")
    kind = ds.dtype.kind
    if not (kind in "biufS" or (kind == "O" and h5py.check_string_dtype(ds.dtype) is not None)):
        raise DataCorruptError(f"{file}: {at} holds HDF5 type {ds.dtype}, not numbers or text")
    return _text(ds[()])


def _group(h5py, group, file: str, at: str, depth: int, budget: list[int]) -> dict:
    """Group ``group`` as nested dicts of values, as the nir package's reader builds it."""
    if depth > MAX_DEPTH:
        raise DataCorruptError(f"{file}: {at} is nested deeper than {MAX_DEPTH} groups")
    out: dict = {}
    for key in group:
        here = f"{at}/{key}"
        if not isinstance(group.get(key, getlink=True), h5py.HardLink):
            raise DataCorruptError(f"{file}: {here} is a link, which is not followed")
        item = group[key]
        if isinstance(item, h5py.Group):
            out[key] = _group(h5py, item, file, here, depth + 1, budget)
        elif isinstance(item, h5py.Dataset):
            out[key] = _dataset(h5py, item, file, here, budget)
        else:
            raise DataCorruptError(f"{file}: {here} is neither a group nor a dataset")
    return out


def _load(file: str) -> dict:
    """The file's ``node`` group as nested dicts; ``DataCorruptError`` when it is not HDF5 or is damaged."""
    import h5py  # the nir package's own dependency, present whenever require_nir() succeeded

    if not h5py.is_hdf5(file):
        raise DataCorruptError(f"{file} is not a NIR file (HDF5 signature not found)")
    heap_problem = damaged_global_heap(file)
    if heap_problem is not None:
        raise DataCorruptError(f"{file} is not a readable NIR file (HDF5: {heap_problem})")
    try:
        with h5py.File(file, "r") as f:
            if not isinstance(f.get("node", getlink=True), h5py.HardLink) or not isinstance(f["node"], h5py.Group):
                raise DataCorruptError(f"{file} is not a NIR file (no 'node' group)")
            return _group(h5py, f["node"], file, "node", 1, [EXPANSION * os.path.getsize(file) + (1 << 20)])
    except DataCorruptError:
        raise
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as e:  # h5py on damaged bytes, names, types
        raise DataCorruptError(f"{file} is not a readable NIR file (HDF5: {_hdf5_reason(e)})") from None


def _hdf5_reason(e: BaseException) -> str:
    """h5py's message without its ``Unable to ... (`` wrapper: ``truncated file: eof = 5000, ...``."""
    text = _line(e)
    if text.startswith("Unable to") and text.endswith(")") and "(" in text:
        return text[text.index("(") + 1:-1]
    return text


def _edges(file: str, graph: dict, at: str) -> list[tuple[str, str]]:
    if "edges" not in graph:
        raise DataCorruptError(f"{file}: the graph has no 'edges' dataset")
    edges = np.asarray(graph["edges"])
    if edges.size == 0:
        return []
    if edges.ndim != 2 or edges.shape[1] != 2 or not all(isinstance(v, str) for v in edges.ravel()):
        raise DataCorruptError(f"{file}: {at}/edges is not a list of [source, target] node names")
    return [(str(a), str(b)) for a, b in edges]


def _graph(nir, file: str, graph: dict, at: str):
    """The ``nir.NIRGraph`` of the dict of an HDF5 group of type ``NIRGraph``, every node checked first."""
    kind = graph.get("type")
    if not (isinstance(kind, str) and kind == "NIRGraph" and isinstance(graph.get("nodes"), dict)):
        raise DataCorruptError(f"{file}: {at} is not a NIR graph (type {shown(kind)}, needs 'NIRGraph' with a "
                               "'nodes' group)")
    edges = _edges(file, graph, at)
    nodes = {}
    for name, fields in graph["nodes"].items():
        kind = fields.get("type") if isinstance(fields, dict) else None
        if not isinstance(kind, str):
            raise DataCorruptError(f"{file}: node {name!r} has no type")
        check_fields(file, name, kind, fields)
        nodes[name] = _graph(nir, file, fields, f"{at}/nodes/{name}") if kind == "NIRGraph" else (
            _node(nir, file, name, fields))
    metadata = graph.get("metadata", {})
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata if isinstance(metadata, dict) else {},
                        type_check=False)


def _node(nir, file: str, name: str, fields: dict):
    """The nir node built from checked ``fields``; the nir package's own refusal as one line."""
    cls = getattr(nir, fields["type"], None)
    if not (isinstance(cls, type) and issubclass(cls, nir.NIRNode)):
        raise DataCorruptError(f"{file}: node {name!r} has unknown type {shown(fields['type'])}")
    try:
        return nir.dict2NIRNode(dict(fields))
    except BUILD_ERRORS as e:
        raise DataCorruptError(f"{file}: node {name!r} ({fields['type']}) is not a valid NIR node "
                               f"({type(e).__name__}: {_line(e)})") from None


def read_nir(path: str | os.PathLike):
    """The ``nir.NIRGraph`` in NIR file ``path``; :class:`DataNotFoundError` when it is missing,
    :class:`DataCorruptError` (one line naming the file and what is wrong) when it is not a sound NIR file."""
    nir = require_nir()
    if os.path.isdir(path):  # was "NIR file not found", though it is there
        raise DataNotFoundError(f"{path} is a folder, not a NIR file: give the path of the .nir file")
    if not os.path.isfile(path):
        raise DataNotFoundError(f"NIR file not found: {path}")
    file = os.fspath(path)
    return _graph(nir, file, _load(file), "node")
