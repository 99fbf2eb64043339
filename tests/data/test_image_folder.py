"""Decoding of single image files (``data.image_folder.load_image``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepspike.core.errors import DataCorruptError
from deepspike.data import load_dataset
from deepspike.data.image_folder import load_image

GREY16 = np.array([[0, 128, 129, 4000], [32896, 40000, 65407, 65535]], dtype=np.uint16)  # [2, 4]
GREY8 = np.array([[0, 0, 1, 16], [128, 156, 255, 255]], dtype=np.uint8)  # round(v / 257), by hand


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_16_bit_grey_image_is_scaled_to_8_bits_not_clipped(tmp_path, suffix):
    """Pillow opens 16-bit grey PNG and TIFF files in mode ``I;16`` and its ``convert`` clips them at 255: every value
    above 255 of 65535 came out white (4000 -> 255 instead of 16). Now ``round(v / 257)``, as 8 of 16 bits hold it."""
    path = tmp_path / f"g{suffix}"
    Image.fromarray(GREY16).save(path)
    assert Image.open(path).mode.startswith("I;16")
    np.testing.assert_array_equal(load_image(path, (2, 4), grayscale=True)[:, :, 0], GREY8)
    np.testing.assert_array_equal(load_image(path, (2, 4), grayscale=False), np.repeat(GREY8[:, :, None], 3, axis=2))


def test_an_image_folder_of_16_bit_pngs_reads_their_grey_levels(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(2):
            Image.fromarray(GREY16).save(tmp_path / c / f"{i}.png")
    splits = load_dataset("imagefolder", data_dir=tmp_path, size=[2, 4], grayscale=True, train_per_class=1)
    expected = GREY8 / 255.0
    for x in (splits.train.x, splits.test.x):
        np.testing.assert_allclose(x[:, 0].numpy(), np.broadcast_to(expected, (2, 2, 4)), rtol=0, atol=1e-7)


@pytest.mark.parametrize("values, dtype, message", [
    ([[0, 4000], [32896, 65535]], np.int32, r"mode I \(32-bit integer grey\) holds values in \[0, 65535\]"),
    ([[0, -4000], [32000, -32768]], np.int16, r"mode I \(32-bit integer grey\) holds values in \[-32768, 32000\]"),
    ([[0, 0.25], [0.5, 1.0]], np.float32, r"mode F \(32-bit float grey\) holds values in \[0, 1\]"),
])
def test_a_32_bit_or_float_image_that_is_no_8_bit_grey_is_refused_not_clipped(tmp_path, values, dtype, message):
    """Pillow opens 32-bit integer and int16 TIFFs in mode ``I`` and float ones in mode ``F``, and its ``convert``
    clips to [0, 255] and rounds: an int32 image of 16-bit levels came out white above 255 (as ``I;16`` did before
    its fix) and a float image in [0, 1] black (0.25 -> 0, 1.0 -> 1 of 255), silently. Now such an image is one line
    naming the file; one whose values are whole grey levels in [0, 255] reads as they are."""
    path = tmp_path / "g.tif"
    Image.fromarray(np.array(values, dtype=dtype)).save(path)
    tail = r"convert it to 8 bits \(or 16-bit unsigned grey\); remove or replace it$"
    pattern = rf"^cannot decode image {path}: Pillow {message}, not 8-bit grey .*: {tail}"
    with pytest.raises(DataCorruptError, match=pattern):
        load_image(path, (2, 2), grayscale=True)


@pytest.mark.parametrize("dtype", [np.int32, np.float32])
def test_a_32_bit_or_float_image_of_8_bit_levels_reads_them(tmp_path, dtype):
    path = tmp_path / "g.tif"
    Image.fromarray(GREY8.astype(dtype)).save(path)
    np.testing.assert_array_equal(load_image(path, (2, 4), grayscale=True)[:, :, 0], GREY8)
    np.testing.assert_array_equal(load_image(path, (2, 4), grayscale=False), np.repeat(GREY8[:, :, None], 3, axis=2))


def test_an_entry_named_as_an_image_that_is_no_file_is_one_line_not_left_out(tmp_path):
    """Before: a broken link, a link loop or a folder named ``*.png`` among a class's images was left out with no word
    (2 of the 3 images of class ``a`` trained on); now one line naming it. Other names (no image suffix) stay out."""
    import os

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(2):
            Image.fromarray(GREY8).save(tmp_path / c / f"{i}.png")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    assert len(load_dataset("imagefolder", data_dir=tmp_path, size=2, train_per_class=1).train) == 2
    for kind, make in (("missing", lambda p: os.symlink(tmp_path / "gone.png", p)), ("missing", lambda p: os.symlink(
            p.name, p)), ("a folder", lambda p: p.mkdir())):
        entry = tmp_path / "a" / "2.png"
        make(entry)
        with pytest.raises(DataCorruptError, match=rf"^{entry} is {kind}"):
            load_dataset("imagefolder", data_dir=tmp_path, size=2, train_per_class=1)
        entry.rmdir() if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def test_a_class_missing_from_the_test_folder_warns_and_a_broken_class_link_is_refused(tmp_path, capsys):
    """ImageNet layout: a class of train/ with no val/ folder was silent (its test accuracy unmeasured); a class folder
    that is a broken link was skipped, the class dropped. Now a one-line warning naming it, and a one-line error."""
    for split, classes in (("train", ("a", "b", "c")), ("val", ("a", "c"))):
        for c in classes:
            (tmp_path / split / c).mkdir(parents=True)
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / split / c / "0.png")
    assert len(load_dataset("imagefolder", data_dir=tmp_path, size=4).test) == 2
    assert capsys.readouterr().err == (f"deepspike: warning: imagefolder: {tmp_path / 'val'} holds no sample of 1 of "
                                       "its 3 classes: b\n")
    (tmp_path / "train" / "d").symlink_to(tmp_path / "gone")
    with pytest.raises(DataCorruptError, match=r"train holds broken links \(their targets do not exist\): d$"):
        load_dataset("imagefolder", data_dir=tmp_path, size=4)
