"""Image folders (ImageNet and Caltech layouts): exact pixels, labels, splits, streaming, errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError
from deepspike.data import BatchIterator, ImageFileDataset, TensorDataset, load_dataset


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DEEPSPIKE_DATA", raising=False)


def rgb_image(ident: int) -> np.ndarray:
    """A 4x6 (H x W) RGB image: R(0, 0) = ident, G(1, 2) = 100, B(3, 5) = 200, the rest 7."""
    a = np.full((4, 6, 3), 7, np.uint8)
    a[0, 0, 0] = ident
    a[1, 2, 1] = 100
    a[3, 5, 2] = 200
    return a


def write_classes(root: Path, counts: dict[str, int], start: int = 1) -> dict[int, str]:
    """PNG files root/<class>/img<k>.png; returns {ident: class}."""
    ident, owner = start, {}
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            Image.fromarray(rgb_image(ident)).save(root / cls / f"img{k}.png")
            owner[ident] = cls
            ident += 1
    return owner


def check_exact(ds: TensorDataset, owner: dict[int, str], names) -> set[int]:
    """Every image has the written pixels and the label of the folder it came from; returns the idents."""
    idents = set()
    for x, y in zip(ds.x, ds.y):
        ident = round(x[0, 0, 0].item() * 255)
        assert owner[ident] == names[y]
        assert x[1, 1, 2].item() == pytest.approx(100 / 255) and x[2, 3, 5].item() == pytest.approx(200 / 255)
        assert x[0, 3, 3].item() == pytest.approx(7 / 255)
        idents.add(ident)
    return idents


def test_flat_folder_per_class_split_exact(tmp_path):
    owner = write_classes(tmp_path / "imgs", {"cat": 5, "dog": 4})
    data = load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=(4, 6), train_per_class=3)
    assert data.class_names == ("cat", "dog") and data.num_classes == 2 and data.input_shape == (3, 4, 6)
    assert len(data.train) == 6 and len(data.test) == 3
    assert torch.bincount(data.train.y).tolist() == [3, 3] and torch.bincount(data.test.y).tolist() == [2, 1]
    train_ids = check_exact(data.train, owner, data.class_names)
    test_ids = check_exact(data.test, owner, data.class_names)
    assert train_ids.isdisjoint(test_ids) and train_ids | test_ids == set(owner)


def test_split_is_fixed_by_split_seed_not_seed(tmp_path):
    write_classes(tmp_path / "imgs", {"a": 6, "b": 6})

    def test_ids(**kw):
        d = load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=(4, 6), test_fraction=0.5, **kw)
        return sorted(round(v * 255) for v in d.test.x[:, 0, 0, 0].tolist())

    assert test_ids(seed=0) == test_ids(seed=5)  # `seed` only picks the validation part
    assert len(test_ids()) == 6
    assert any(test_ids(split_seed=s) != test_ids() for s in (1, 2, 3))


def test_imagenet_layout_train_val(tmp_path):
    owner = write_classes(tmp_path / "inet" / "train", {"n01": 2, "n02": 3})
    owner |= write_classes(tmp_path / "inet" / "val", {"n02": 1, "n01": 2}, start=50)
    data = load_dataset("imagefolder", data_dir=tmp_path / "inet", size=(4, 6), val_fraction=0.4)
    assert data.class_names == ("n01", "n02")
    assert len(data.train) == 3 and len(data.val) == 2 and len(data.test) == 3  # 40% of each class to val
    check_exact(data.test, owner, data.class_names)
    seen = check_exact(data.train, owner, data.class_names) | check_exact(data.val, owner, data.class_names)
    assert sorted(seen) == [1, 2, 3, 4, 5]


def test_grayscale_resize_and_jpeg(tmp_path):
    root = tmp_path / "g" / "only"
    root.mkdir(parents=True)
    # R = G = B = v: Pillow's L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 = v exactly
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(root / "a.png")
    Image.fromarray(np.full((8, 8, 3), (200, 100, 50), np.uint8)).save(root / "b.jpg", quality=95)
    (tmp_path / "g" / "second").mkdir()
    Image.fromarray(np.full((3, 5, 3), 30, np.uint8)).save(tmp_path / "g" / "second" / "c.bmp")
    gray = load_dataset("imagefolder", data_dir=tmp_path / "g", size=4, grayscale=True, test_fraction=0.0)
    assert gray.train.x.shape == (3, 1, 4, 4) and gray.class_names == ("only", "second")
    # a constant image stays constant under bilinear resizing
    np.testing.assert_allclose(gray.train.x[0].numpy(), 90 / 255, atol=1e-6)
    np.testing.assert_allclose(gray.train.x[2].numpy(), 30 / 255, atol=1e-6)
    color = load_dataset("imagefolder", data_dir=tmp_path / "g", size=(8, 8), test_fraction=0.0)
    jpeg = color.train.x[1] * 255  # [3, 8, 8]
    for c, v in enumerate((200, 100, 50)):
        assert (jpeg[c] - v).abs().max().item() <= 3  # JPEG is lossy but a flat colour survives


def test_streaming_matches_in_memory(tmp_path):
    write_classes(tmp_path / "imgs", {"a": 4, "b": 3, "c": 3})
    kw = dict(data_dir=tmp_path / "imgs", size=(4, 6), test_fraction=0.3, val_fraction=0.25, seed=3)
    mem = load_dataset("imagefolder", in_memory=True, **kw)
    stream = load_dataset("imagefolder", in_memory=False, **kw)
    assert isinstance(stream.train, ImageFileDataset) and isinstance(mem.train, TensorDataset)
    assert torch.equal(stream.train.y, mem.train.y) and torch.equal(stream.val.y, mem.val.y)
    assert stream.mean == pytest.approx(mem.mean) and stream.std == pytest.approx(mem.std)
    it_mem = BatchIterator(mem.train, 2, seed=1, augment={"hflip": True, "crop_padding": 1})
    it_stream = BatchIterator(stream.train, 2, seed=1, augment={"hflip": True, "crop_padding": 1})
    for epoch in (0, 1):
        it_mem.set_epoch(epoch)
        it_stream.set_epoch(epoch)
        for (xm, ym), (xs, ys) in zip(it_mem, it_stream, strict=True):
            assert torch.equal(ym, ys) and torch.allclose(xm, xs)


def test_auto_streams_when_over_memory_limit(tmp_path):
    write_classes(tmp_path / "imgs", {"a": 3, "b": 3})
    data = load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=(4, 6), memory_limit_gb=1e-9)
    assert isinstance(data.train, ImageFileDataset) and isinstance(data.test, ImageFileDataset)
    x, y = next(iter(BatchIterator(data.test, 8, shuffle=False)))
    assert x.shape == (len(data.test), 3, 4, 6) and y.dtype == torch.int64


@pytest.mark.parametrize("in_memory", [None, True])
def test_images_decoded_past_the_machines_memory_are_refused_before_any_is_decoded(tmp_path, monkeypatch, in_memory):
    """size=[65536, 65536] streamed, its statistics' sample asked numpy for 48 GiB (a MemoryError traceback); with
    in_memory: true at 40000 x 40000 the process was killed for memory. On a machine of 1 GiB, 8192 x 8192 (768 MiB
    an image as float32): the 4 training images of the statistics streamed (9 bytes a value: 6.75 GiB), or all 6 in
    memory (4.5 GiB) and the training split's uint8 copy and float32 intermediate (3.75 GiB)."""
    from deepspike.data import folders

    monkeypatch.setattr(folders, "physical_memory", lambda: 2**30)
    write_classes(tmp_path / "imgs", {"a": 3, "b": 3})
    need = "6.8" if in_memory is None else "8.2"
    with pytest.raises(ConfigError, match=rf"^imagefolder: decoding its 3 x 8192 x 8192 images needs {need} GiB, more "
                                          r"than this machine's 1.0 GiB; set data.args.size smaller"):
        load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=8192, in_memory=in_memory, test_fraction=0.34)
    assert load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=(4, 6), in_memory=in_memory,
                        test_fraction=0.34).input_shape == (3, 4, 6)


@pytest.mark.parametrize(("in_memory", "need"), [(True, 5216), (False, 3456)])
def test_the_validation_copy_and_the_statistics_chunk_are_counted(tmp_path, monkeypatch, in_memory, need):
    """4 training and 2 test images of 3 x 4 x 6 = 72 values (288 float32 bytes). In memory: both splits (1,728 bytes)
    and the larger of decoding's uint8 copy and float32 intermediate (5 x 4 x 72 = 1,440) and what make_splits holds
    for val_fraction 0.5, uncounted before: the copies of the 4 training images and labels (4 x 296 = 1,184) and the
    float64 statistics chunk (8 x 4 x 72 = 2,304): 5,216 bytes (3,168 were counted). Streamed: the 4 images of the
    statistics while decoded (9 x 4 x 72 = 2,592), then as float32 (1,152) beside the chunk (2,304): 3,456 (2,592)."""
    from deepspike.data import folders

    write_classes(tmp_path / "imgs", {"a": 3, "b": 3})
    args = {"data_dir": tmp_path / "imgs", "size": (4, 6), "in_memory": in_memory, "test_fraction": 0.34,
            "val_fraction": 0.5}
    monkeypatch.setattr(folders, "physical_memory", lambda: need - 1)
    with pytest.raises(ConfigError, match=r"^imagefolder: decoding its 3 x 4 x 6 images needs 0.0 GiB, more than"):
        load_dataset("imagefolder", **args)
    monkeypatch.setattr(folders, "physical_memory", lambda: need)
    data = load_dataset("imagefolder", **args)
    assert (len(data.train), len(data.val), len(data.test)) == (2, 2, 2)


def test_a_class_too_small_for_the_test_fraction_warns(tmp_path, capsys):
    """test_fraction 0.2 of each class: round(0.2 n) = 0 for a class of 1 or 2 images, which then had no test image
    without a word; now a one-line warning names it (none with test_fraction 0, where no test split is asked for)."""
    write_classes(tmp_path / "imgs", {"a": 5, "b": 2})
    data = load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=4, test_fraction=0.2)
    assert torch.bincount(data.test.y, minlength=2).tolist() == [1, 0]
    assert capsys.readouterr().err == "deepspike: warning: imagefolder: the test split holds no sample of 1 of its 2 " \
                                      "classes: b\n"
    load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=4, test_fraction=0)
    assert capsys.readouterr().err == ""


def caltech(root: Path) -> dict[int, str]:
    return write_classes(root / "101_ObjectCategories",
                         {"BACKGROUND_Google": 2, "Faces_easy": 4, "Motorbikes": 5, "airplanes": 4})


def test_caltech_faces_motorbikes(tmp_path, monkeypatch):
    owner = caltech(tmp_path / "env")
    monkeypatch.setenv("DEEPSPIKE_DATA", str(tmp_path / "env"))
    data = load_dataset("caltech", size=(4, 6), grayscale=False, train_per_class=3, val_fraction=1 / 3)
    assert data.class_names == ("Faces_easy", "Motorbikes")
    # per class: 3 for train+val (2 + 1), the rest (1 face, 2 motorbikes) for test
    assert torch.bincount(data.train.y).tolist() == [2, 2] and torch.bincount(data.val.y).tolist() == [1, 1]
    assert torch.bincount(data.test.y).tolist() == [1, 2]
    for ds in (data.train, data.val, data.test):
        check_exact(ds, owner, data.class_names)
    every = load_dataset("caltech", size=(4, 6), classes="all", train_per_class=1)
    assert every.class_names == ("Faces_easy", "Motorbikes", "airplanes")  # no BACKGROUND_Google
    default = load_dataset("caltech", train_per_class=2)
    assert default.input_shape == (1, 160, 250)  # zhang2021: grey 160 x 250


def test_caltech_missing_class_and_missing_data(tmp_path):
    caltech(tmp_path)
    with pytest.raises(DataNotFoundError, match="caltech") as err:
        load_dataset("caltech", data_dir=tmp_path / "elsewhere")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "elsewhere" / "101_ObjectCategories") in msg
    assert str(tmp_path / "home" / ".cache" / "deepspike" / "caltech101" / "101_ObjectCategories") in msg
    with pytest.raises(DataNotFoundError, match="Leopards"):
        load_dataset("caltech", data_dir=tmp_path, classes=["Leopards"])
    with pytest.raises(ConfigError, match="train_per_class"):
        load_dataset("caltech", data_dir=tmp_path, size=4, train_per_class=4)


def test_corrupt_image_and_bad_options(tmp_path):
    write_classes(tmp_path / "imgs", {"a": 2, "b": 2})
    (tmp_path / "imgs" / "b" / "broken.jpg").write_bytes(b"this is not a JPEG")
    with pytest.raises(DataCorruptError, match="broken.jpg") as err:
        load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=(4, 6), in_memory=True,
                     test_fraction=0.0)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="data_dir"):
        load_dataset("imagefolder")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_dataset("imagefolder", data_dir=tmp_path / "missing")
    (tmp_path / "a.txt").write_text("x")  # was "folder .../a.txt does not exist"
    with pytest.raises(DataNotFoundError, match=r"^imagefolder: \S+a.txt is not a folder; point data_dir at a folder"):
        load_dataset("imagefolder", data_dir=tmp_path / "a.txt")
    with pytest.raises(ConfigError, match="image size"):
        load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=(4, 0))


def test_an_image_header_claiming_a_huge_size_is_corrupt_not_a_crash(tmp_path):
    """A PNG of a few bytes whose header claims 20,000 x 20,000 pixels: PIL's DecompressionBombError (not an
    OSError) escaped as a traceback."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    write_classes(tmp_path / "imgs", {"a": 2, "b": 2})
    header = struct.pack(">IIBBBBB", 20_000, 20_000, 8, 2, 0, 0, 0)  # 8-bit RGB
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
           + chunk(b"IEND", b""))
    (tmp_path / "imgs" / "a" / "bomb.png").write_bytes(png)
    with pytest.raises(DataCorruptError, match="bomb.png"):
        load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=(4, 6), in_memory=True, test_fraction=0.0)


@pytest.mark.parametrize("options", [
    {"size": True}, {"size": 10**6}, {"size": 2.5}, {"grayscale": "false"}, {"classes": 5}, {"classes": []},
    {"test_fraction": "0.2"}, {"train_per_class": -1}, {"train_per_class": 2.5}, {"train_per_class": True},
    {"split_seed": "x"}, {"split_seed": 1.5}, {"in_memory": "no"}, {"memory_limit_gb": "x"},
    {"stats_samples": 0, "in_memory": False}, {"stats_samples": -1, "in_memory": False},
])
def test_hostile_folder_options_are_one_config_error_line(tmp_path, options):
    """Before: a string fraction, seed or memory limit, a float count or size=True crashed (TypeError, ValueError),
    size=10**6 asked numpy for 27 TiB, and train_per_class=-1 (all but one image per class), grayscale="false"
    (grey) and stats_samples=0 (NaN mean and std) were taken."""
    write_classes(tmp_path / "imgs", {"a": 3, "b": 3})
    for name in ("imagefolder", "caltech"):
        root = tmp_path / "imgs" if name == "imagefolder" else tmp_path / "cal"
        if name == "caltech":
            write_classes(root / "101_ObjectCategories", {"Faces_easy": 3, "Motorbikes": 3})
        kwargs = {"size": (4, 6), "train_per_class": 2, **options}
        with pytest.raises(ConfigError) as err:
            load_dataset(name, data_dir=root, **kwargs)
        assert "\n" not in str(err.value) and ("size" in options or next(iter(options)) in str(err.value))


def test_one_class_name_is_one_class_not_its_letters(tmp_path):
    """imagefolder's ``classes: cat`` iterated the letters c, a, t (no such folders); now it is the one class."""
    write_classes(tmp_path / "imgs", {"cat": 3, "dog": 3})
    data = load_dataset("imagefolder", data_dir=tmp_path / "imgs", size=(4, 6), classes="cat", train_per_class=2)
    assert data.class_names == ("cat",) and len(data.train) == 2 and len(data.test) == 1
