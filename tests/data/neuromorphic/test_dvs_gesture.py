"""DVS Gesture's listing of recordings (``data.neuromorphic.dvs_gesture``)."""

from __future__ import annotations

import pytest

from deepspike.core.errors import DataCorruptError
from deepspike.data.neuromorphic.dvs_gesture import list_recordings
from deepspike.data.neuromorphic.formats import make_events, write_gesture_npy


@pytest.mark.parametrize("stem", ["²", "١", "x", "11", "-1"])
def test_a_file_not_named_by_an_ascii_label_is_one_error_line(tmp_path, stem):
    """``².npy`` passed ``str.isdigit`` and then made ``int`` raise a bare ValueError (a traceback); ``١`` (an
    Arabic-Indic one) was read as label 1. Both, like any name that is no label 0 to 10, are a DataCorruptError."""
    folder = tmp_path / "user01_led"
    folder.mkdir()
    write_gesture_npy(folder / "3.npy", make_events([1], [2], [0], [1]))
    write_gesture_npy(folder / f"{stem}.npy", make_events([1], [2], [0], [1]))
    with pytest.raises(DataCorruptError, match=r"\.npy: a DVS Gesture recording is named by its label, 0 to 10"):
        list_recordings(tmp_path)


def test_recordings_are_listed_with_the_label_of_their_name(tmp_path):
    for user, labels in (("user02_led", (10, 0)), ("user01_fluorescent", (7,))):
        (tmp_path / user).mkdir()
        for label in labels:
            write_gesture_npy(tmp_path / user / f"{label}.npy", make_events([1], [2], [0], [1]))
    listed = [(f.parent.name, f.name, label) for f, label in list_recordings(tmp_path)]
    assert listed == [("user01_fluorescent", "7.npy", 7), ("user02_led", "0.npy", 0), ("user02_led", "10.npy", 10)]
