"""Where data sets are looked for, and the one-line error when they are not there.

Search order for a data set (first match wins):

1. ``data_dir`` (the caller's argument; also ``data.data_dir`` in a recipe), itself and its subfolders;
2. every folder in ``$DEEPSPIKE_DATA`` (``os.pathsep``-separated), with the data set's subfolders;
3. ``~/.cache/deepspike`` with the same subfolders (also where ``download=True`` saves files);
4. data-set specific system folders (Debian's ``/usr/share/datasets/fashion-mnist`` for Fashion-MNIST).

The data set's own folder itself (``data_dir`` without subfolder) is only tried for ``data_dir``: under the
shared roots a bare folder is ambiguous (MNIST and Fashion-MNIST use the same file names).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from deepspike.core.errors import DataCorruptError, DataNotFoundError, one_line  # noqa: F401 - one_line: re-exported
from deepspike.core.paths import expand

ENV_VAR = "DEEPSPIKE_DATA"


def cache_root() -> Path:
    """``~/.cache/deepspike``: the last shared root and the default download target."""
    return Path.home() / ".cache" / "deepspike"


def search_roots(data_dir: str | os.PathLike | None) -> list[Path]:
    """The shared roots in search order: ``data_dir``, each ``$DEEPSPIKE_DATA`` entry, the cache root."""
    roots = [expand(data_dir)] if data_dir else []
    env = os.environ.get(ENV_VAR, "")
    roots += [expand(p, f"${ENV_VAR} entry") for p in env.split(os.pathsep) if p]
    roots.append(cache_root())
    return roots


def candidate_dirs(data_dir: str | os.PathLike | None, subdirs: Sequence[str],
                   extra: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """Every folder to look in, in order, without duplicates.

    ``data_dir`` itself, then ``root/sub`` for each root of :func:`search_roots` and each of ``subdirs``,
    then ``extra`` (system folders, tried as they are).
    """
    dirs = [expand(data_dir)] if data_dir else []
    dirs += [root / sub for root in search_roots(data_dir) for sub in subdirs]
    dirs += [Path(p) for p in extra]
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def download_dir(data_dir: str | os.PathLike | None, subdir: str = "") -> Path:
    """Where ``download=True`` writes: ``data_dir`` if given, else the first ``$DEEPSPIKE_DATA`` entry, else
    ``~/.cache/deepspike``; plus ``subdir``."""
    return search_roots(data_dir)[0] / subdir


def resolve_file(folder: Path, names: Sequence[str]) -> Path | None:
    """The first of ``names`` (alternatives, e.g. raw and ``.gz``) that is a file in ``folder``."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def find_files(dataset: str, required: Sequence[Sequence[str]], places: Sequence[Path],
               how_to_get: str) -> list[Path]:
    """Find the first folder in ``places`` that holds every required file.

    ``required`` lists, per file, its accepted names (e.g. ``["x-ubyte", "x-ubyte.gz"]``). Returns one
    path per required file. Raises :class:`DataNotFoundError` (one line) naming the data set, the files,
    every folder looked in, and ``how_to_get``.
    """
    for folder in places:
        found = [resolve_file(folder, names) for names in required]
        if all(p is not None for p in found):
            return found  # type: ignore[return-value]
    raise not_found(dataset, ", ".join(_describe(names) for names in required), places, how_to_get)


def _describe(names: Sequence[str]) -> str:
    """``a[.gz]`` for a raw/gzip pair, else ``a|b``."""
    if len(names) == 2 and names[1] == names[0] + ".gz":
        return f"{names[0]}[.gz]"
    return "|".join(names)


def not_found(dataset: str, what: str, places: Sequence[Path], how_to_get: str) -> DataNotFoundError:
    """The standard one-line error for data that is missing."""
    looked = ", ".join(str(p) for p in places)
    return DataNotFoundError(f"{dataset}: data not found: need {what}; looked in: {looked}; "
                             f"to get it: {how_to_get}")


def check_regular_file(path: str | os.PathLike) -> None:
    """A one-line :class:`DataCorruptError` unless ``path`` is a regular file, a link to one included: a folder,
    a named pipe (reading it waits forever), a device (``/dev/zero`` read as an empty recording) or a broken link
    where a data file is listed."""
    path = Path(path)
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "a pipe or device" if path.exists() else "missing (a broken link?)"
        raise DataCorruptError(f"{path} is {kind}, not a data file; remove it or put the file there")


def check_no_broken_links(folder: Path, dataset: str = "") -> None:
    """A one-line :class:`DataCorruptError` naming the broken links among ``folder``'s entries (not hidden ones): the
    loaders list sub-folders with ``is_dir``, which is False for a link whose target is gone, so a class or user folder
    behind one was skipped without a word."""
    broken = sorted(d.name for d in folder.iterdir() if d.is_symlink() and not d.exists() and d.name[:1] != ".")
    if broken:
        raise DataCorruptError(f"{dataset + ': ' if dataset else ''}{folder} holds broken links (their targets do not "
                               f"exist): {', '.join(broken)}")
