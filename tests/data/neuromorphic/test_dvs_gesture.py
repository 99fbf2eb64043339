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


def test_a_missing_gesture_warns_and_a_broken_user_folder_link_is_refused(tmp_path, capsys):
    """A split with no recording of a gesture (its per-class accuracy unmeasured) was silent, and a user folder that is
    a broken link was skipped as no folder; now a one-line warning naming the gesture, and a one-line error."""
    (tmp_path / "user01_led").mkdir()
    for label in (0, 1, 2, 3, 4, 5, 6, 7, 8, 10):
        write_gesture_npy(tmp_path / "user01_led" / f"{label}.npy", make_events([1], [2], [0], [1]))
    assert len(list_recordings(tmp_path)) == 10
    assert capsys.readouterr().err == (f"deepspike: warning: dvs_gesture: {tmp_path} holds no sample of 1 of its 11 "
                                       "classes: air guitar\n")
    (tmp_path / "user02_led").symlink_to(tmp_path / "gone")
    with pytest.raises(DataCorruptError, match=r"^dvs_gesture: \S+ holds broken links \(their targets do not exist\): "
                                               r"user02_led$"):
        list_recordings(tmp_path)
