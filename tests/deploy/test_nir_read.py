"""``read_nir`` on hostile files: each is one DataCorruptError line naming the file; a sound file reads as
``nir.read`` reads it."""

from __future__ import annotations

import numpy as np
import pytest

from deepspike.core.errors import DataCorruptError, DataNotFoundError

nir = pytest.importorskip("nir")
h5py = pytest.importorskip("h5py")
from deepspike.deploy import from_nir, read_nir  # noqa: E402
from deploy.nir_files import replace, tiny_graph, write  # noqa: E402


def _refused(path, message: str) -> None:
    """Both ``read_nir`` and ``from_nir`` refuse ``path`` with exactly ``message``."""
    for load in (read_nir, from_nir):
        with pytest.raises(DataCorruptError) as e:
            load(path)
        assert str(e.value) == message


def test_a_sound_file_reads_as_the_nir_package_reads_it(tmp_path):
    path = write(tiny_graph(), tmp_path / "m.nir")
    ours, theirs = read_nir(path), nir.read(str(path), type_check=False)
    assert list(ours.nodes) == list(theirs.nodes) and ours.edges == theirs.edges
    assert [type(n) for n in ours.nodes.values()] == [type(n) for n in theirs.nodes.values()]
    np.testing.assert_array_equal(ours.nodes["fc"].weight, theirs.nodes["fc"].weight)
    assert ours.metadata == {"dt": 1e-4}


def test_a_missing_file_is_not_found(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        read_nir(tmp_path / "none.nir")
    assert str(e.value) == f"NIR file not found: {tmp_path / 'none.nir'}"


def test_a_folder_is_named_a_folder_not_a_missing_file(tmp_path):
    # before: "NIR file not found: .../model.nir" for a folder of that name (from_nir, eval, method.init_from)
    (tmp_path / "model.nir").mkdir()
    with pytest.raises(DataNotFoundError) as e:
        read_nir(tmp_path / "model.nir")
    assert str(e.value) == f"{tmp_path / 'model.nir'} is a folder, not a NIR file: give the path of the .nir file"


@pytest.mark.parametrize("content", [b"", np.random.default_rng(0).bytes(3000), b"nodes:\n  fc: {weight: [1, 2]}\n"],
                         ids=["empty", "random", "yaml"])
def test_a_file_that_is_not_hdf5_is_not_a_nir_file(tmp_path, content):
    path = tmp_path / "x.nir"
    path.write_bytes(content)
    _refused(path, f"{path} is not a NIR file (HDF5 signature not found)")


def test_a_truncated_file_is_not_readable(tmp_path):
    good = write(tiny_graph(), tmp_path / "m.nir").read_bytes()
    path = tmp_path / "cut.nir"
    path.write_bytes(good[:5000])
    _refused(path, f"{path} is not a readable NIR file (HDF5: truncated file: eof = 5000, sblock->base_addr = 0, "
                   f"stored_eof = {len(good)})")


def test_a_graph_without_edges_is_refused(tmp_path):
    path = replace(write(tiny_graph(), tmp_path / "m.nir"), "edges", None)
    _refused(path, f"{path}: the graph has no 'edges' dataset")


def test_a_file_without_a_graph_is_not_a_nir_file(tmp_path):
    path = tmp_path / "x.nir"
    with h5py.File(path, "w") as f:
        f["weights"] = np.ones(3)
    _refused(path, f"{path} is not a NIR file (no 'node' group)")


def test_a_conv_weight_of_the_wrong_rank_is_refused_before_nir_builds_the_node(tmp_path):
    # nir's own Conv2d reads weight.shape[2] and fails with a bare IndexError
    path = replace(write(tiny_graph(), tmp_path / "m.nir"), "nodes/conv/weight", np.ones((3, 5), dtype=np.float32))
    _refused(path, f"{path}: node 'conv': weight has shape (3, 5), a Conv2d weight is [out, in, kh, kw]")


def test_text_where_numbers_belong_is_refused(tmp_path):
    path = replace(write(tiny_graph(), tmp_path / "m.nir"), "nodes/fc/weight", np.array([b"1", b"2"]))
    _refused(path, f"{path}: node 'fc': weight is not numeric (dtype object)")


def test_an_unknown_node_type_is_named(tmp_path):
    path = replace(write(tiny_graph(), tmp_path / "m.nir"), "nodes/spk/type", np.bytes_(b"Eval"))
    _refused(path, f"{path}: node 'spk' has unknown type 'Eval'")


def test_the_nir_packages_own_refusal_is_one_line(tmp_path):
    path = replace(write(tiny_graph(), tmp_path / "m.nir"), "nodes/spk/r", None)
    _refused(path, f"{path}: node 'spk' (IF) is not a valid NIR node (TypeError: IF.__init__() missing 1 required "
                   "positional argument: 'r')")


def test_links_to_other_objects_or_files_are_not_followed(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["w"] = np.ones((3, 128))
    path = replace(write(tiny_graph(), tmp_path / "m.nir"), "nodes/fc/weight", h5py.ExternalLink(str(other), "w"))
    _refused(path, f"{path}: node/nodes/fc/weight is a link, which is not followed")
    path = replace(path, "nodes/fc/weight", h5py.SoftLink("/node/nodes/fc/bias"))
    _refused(path, f"{path}: node/nodes/fc/weight is a link, which is not followed")


def test_groups_nested_too_deep_are_refused(tmp_path):
    path = write(tiny_graph(), tmp_path / "m.nir")
    with h5py.File(path, "r+") as f:
        f.create_group("node/metadata/" + "/".join("g" * 20))
    with pytest.raises(DataCorruptError, match=r"m\.nir: node/metadata/g/g/g/.* is nested deeper than 16 groups$"):
        read_nir(path)


def test_datasets_needing_a_filter_plugin_are_not_read(tmp_path):
    # HDF5 would search its plugin folders and load a library to decode the data
    path = write(tiny_graph(), tmp_path / "m.nir")
    with h5py.File(path, "r+") as f:
        del f["node/nodes/fc/weight"]
        f.create_dataset("node/nodes/fc/weight", data=np.ones((3, 128)), chunks=(3, 128), compression=32123,
                         allow_unknown_filter=True)
    _refused(path, f"{path}: node/nodes/fc/weight needs HDF5 filter plugin(s) [32123], which are not loaded")


def test_a_dataset_declared_far_larger_than_the_file_is_not_read(tmp_path):
    """A 9 GB weight declared in chunks never written (a 37 KB file): numpy was asked for all of it."""
    path = write(tiny_graph(), tmp_path / "m.nir")
    with h5py.File(path, "r+") as f:
        del f["node/nodes/fc/weight"]
        f.create_dataset("node/nodes/fc/weight", shape=(3, 400_000_000), dtype="f8", chunks=(1, 1_000_000))
    size = path.stat().st_size
    assert size < 100_000
    _refused(path, f"{path}: node/nodes/fc/weight declares 9,600,000,000 bytes, more than 64 times what the file "
                   "holds; it is not read")
