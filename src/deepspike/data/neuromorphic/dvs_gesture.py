"""IBM DVS Gesture (Amir et al. 2017): 11 hand gestures, 128 x 128 DVS, 29 subjects, 3 lighting conditions.

On disk (tonic's preprocessed release, one recording cut per gesture): ``<folder>/ibmGestureTrain/
user<NN>_<lighting>/<label>.npy`` and ``<folder>/ibmGestureTest/...`` (``.npy`` columns x, y, p, t in ms).
The folder is ``data_dir`` itself or ``DVSGesture``/``dvs_gesture``/``DVS-Gesture`` under ``data_dir`` and
each data root. The user folders and their files are listed in name order and each file read and checked by
``formats.read_gesture_npy`` (as tonic's ``DVSGesture`` reads it: t times 1000 to microseconds, the label from the file
name); frames are cached.
"""

from __future__ import annotations

from pathlib import Path

from deepspike.core.errors import DataCorruptError
from deepspike.data.neuromorphic.cache import files_fingerprint
from deepspike.data.neuromorphic.formats import READ_BYTES_PER_FILE_BYTE, read_gesture_npy
from deepspike.data.neuromorphic.frames import frame_shape
from deepspike.data.neuromorphic.loading import FrameOptions, as_dataset, event_splits, load_binned, reading_bytes
from deepspike.data.neuromorphic.nmnist import find_split_folders
from deepspike.data.paths import check_no_broken_links
from deepspike.data.registry import register_dataset
from deepspike.data.splits import DataSplits, warn_missing_classes

SENSOR = (128, 128)
SUBDIRS = ("DVSGesture", "dvs_gesture", "DVS-Gesture")
CLASSES = ("hand clapping", "right hand wave", "left hand wave", "right arm clockwise",
           "right arm counter-clockwise", "left arm clockwise", "left arm counter-clockwise", "arm roll",
           "air drums", "air guitar", "other gestures")
HOW_TO_GET = ("fetch ibmGestureTrain.tar.gz / ibmGestureTest.tar.gz (tonic's DVSGesture release) and extract "
              "them into one of these")


def list_recordings(split_folder: Path) -> list[tuple[Path, int]]:
    """``[(file, label), ...]``: every ``<user folder>/<label>.npy`` of ``split_folder``, folders and files in name
    order; a file not named by a label 0 to 10 (in ASCII digits: ``².npy`` made ``int`` raise) is a one-line
    :class:`DataCorruptError`, as is a broken link among the user folders (it was skipped); a gesture no file holds is a
    warning on stderr naming it (``splits.warn_missing_classes``)."""
    recordings = []
    check_no_broken_links(split_folder, "dvs_gesture")
    for user in sorted(d for d in split_folder.iterdir() if d.is_dir()):
        for f in sorted(user.glob("*.npy")):
            if not (f.stem.isascii() and f.stem.isdigit() and int(f.stem) < len(CLASSES)):  # "²" is a digit to isdigit
                raise DataCorruptError(f"{f}: a DVS Gesture recording is named by its label, 0 to {len(CLASSES) - 1}")
            recordings.append((f, int(f.stem)))
    warn_missing_classes([label for _, label in recordings], CLASSES, f"dvs_gesture: {split_folder}")
    return recordings


@register_dataset("dvs_gesture", shape=frame_shape(SENSOR, len(CLASSES)))
def load_dvs_gesture(data_dir=None, val_fraction: float = 0.0, seed: int = 0, download: bool = False,
                     timesteps: int = 20, time_window_ms: float | None = 25.0, stride: int = 4,
                     binary: bool = False, denoise_ms: float | None = None, output: str = "frames",
                     cache: bool = True) -> DataSplits:
    """DVS Gesture as frames ``x [N, T, 2, 128 // stride, 128 // stride]``, ``y`` in 0..10.

    Default: 20 frames of 25 ms (the first 0.5 s), 32 x 32 pixels (stride 4).
    """
    options = FrameOptions(timesteps, time_window_ms, stride, binary, denoise_ms, output)
    folder = find_split_folders("dvs_gesture", data_dir, SUBDIRS, ("ibmGestureTrain", "ibmGestureTest"),
                                HOW_TO_GET)
    parts = []
    for split in ("ibmGestureTrain", "ibmGestureTest"):
        recordings = list_recordings(folder / split)
        key = {"split": "train" if split == "ibmGestureTrain" else "test", "listing": "sorted",
               "files": files_fingerprint([f for f, _ in recordings]), **options.key()}
        arrays = load_binned("dvs_gesture", data_dir, cache, key, recordings,
                             lambda rec: (read_gesture_npy(rec[0]), rec[1]), options, SENSOR, parts,
                             reading_bytes([f for f, _ in recordings], READ_BYTES_PER_FILE_BYTE["gesture"]))
        parts.append(as_dataset(*arrays, options, "dvs_gesture"))
        del arrays  # output: counts: the frames go now, not while the next split is binned beside them (unchecked)
    return event_splits(parts[0], parts[1], val_fraction=val_fraction, seed=seed, class_names=CLASSES,
                        name="dvs_gesture", owned=True)
