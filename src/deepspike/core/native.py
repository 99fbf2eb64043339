"""Compile-on-first-use C kernels: a C source shipped with the package becomes a cached shared library.

``load(source)`` compiles ``source`` with the system C compiler (``$CC``, else ``cc``) into
``$DEEPSPIKE_CACHE/native`` (default ``~/.cache/deepspike/native``) under a name derived from the source text,
the compiler, the flags and this CPU, and loads it with ``ctypes``; later calls and processes reuse the file.
Compilation writes a temporary file and renames it, so concurrent processes (torchrun workers) never load a
half-written library. ``-march=native -fopenmp`` is tried first (the library is then specific to this CPU,
which is part of the name), then without either. A library built with ``-fopenmp`` and loaded after torch binds
to the OpenMP runtime torch already loaded (same soname ``libgomp.so.1``), so its parallel regions run on
torch's worker threads instead of competing with them (an idle OpenMP worker spins for milliseconds).

A library is code this process runs, so it is loaded only from a trusted place: the ``native`` folder and the
library must belong to this user (or root) and be writable by no one else (``_untrusted``; both are made
``0755``). A cache folder another user could write into (a shared ``DEEPSPIKE_CACHE``, one left ``0777``) is not
used at all, not even for a fresh build, which they could swap before it is loaded; ``load`` says why. A library
that fails the test in a trusted folder is built again over it.

Nothing here is required: without a compiler, or with ``DEEPSPIKE_NATIVE=0``, ``load`` returns None and
``unavailable_reason(source)`` says why in one line; callers fall back to their numba or torch paths.
``DEEPSPIKE_NATIVE`` is ``0`` or ``1`` (the default); any other value is a one-line ``ConfigError``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from deepspike.core.env import env_choice
from deepspike.core.paths import expand

_BASE_FLAGS = ["-O3", "-std=gnu11", "-ffp-contract=fast", "-fno-math-errno", "-fPIC", "-shared"]
_FLAG_SETS = (["-march=native", "-fopenmp"], ["-fopenmp"], ["-march=native"], [])
_loaded: dict[Path, ctypes.CDLL | None] = {}
_reasons: dict[Path, str] = {}


def cache_dir() -> Path:
    """Folder of the compiled libraries (``$DEEPSPIKE_CACHE/native`` or ``~/.cache/deepspike/native``); a leading
    ``~`` or ``~user`` in ``DEEPSPIKE_CACHE`` is that home folder (``core.paths.expand``: a one-line ``ConfigError``
    for an unknown user), as in a shell."""
    root = os.environ.get("DEEPSPIKE_CACHE")
    return (expand(root, "DEEPSPIKE_CACHE") if root else Path.home() / ".cache" / "deepspike") / "native"


def _cpu_identity() -> str:
    """Text that changes when the library built with ``-march=native`` may not run here."""
    text = platform.machine() + platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text += "".join(line for line in f if line.startswith(("model name", "flags", "Features")))[:8192]
    except OSError:
        pass
    return text


def _compiler_version(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _compile(source: Path, cc: str, flags: list[str]) -> tuple[Path | None, str]:
    """(path of the cached library, "") or (None, one-line reason)."""
    parts = (source.read_text(), cc, _compiler_version(cc), " ".join(flags), _cpu_identity())
    key = hashlib.sha256(b"\0".join(s.encode() for s in parts)).hexdigest()[:20]
    out = cache_dir() / f"{source.stem}-{key}.so"
    try:
        out.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        distrust = _untrusted(out.parent)
        if distrust:
            return None, distrust
        if out.exists() and not _untrusted(out):
            return out, ""
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
        os.close(fd)
    except OSError as e:
        return None, f"cache folder {out.parent} not writable ({e.strerror}); set DEEPSPIKE_CACHE"
    try:
        res = subprocess.run([cc, *flags, "-o", tmp, str(source), "-lm"], capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            lines = (res.stderr or res.stdout).strip().splitlines()
            return None, f"{cc} failed on {source.name}: {lines[0] if lines else 'exit ' + str(res.returncode)}"
        os.chmod(tmp, 0o755)  # as the linker made it but under any umask: no one else may write it (``_untrusted``)
        os.replace(tmp, out)
        return out, ""
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"{cc} could not run: {e}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _untrusted(path: Path) -> str:
    """Why ``path`` (the cache folder, or a library in it) may hold code someone else put there: it belongs to
    another user than this one and root, or group or others may write it; "" when neither."""
    st = path.stat()  # through a link: what would be loaded
    if hasattr(os, "geteuid") and st.st_uid not in (os.geteuid(), 0):
        return f"{path} belongs to another user (uid {st.st_uid}): not loaded; set DEEPSPIKE_CACHE to a folder of yours"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o}): not loaded; "
                "chmod go-w it or set DEEPSPIKE_CACHE to a folder of yours")
    return ""


def load(source: Path) -> ctypes.CDLL | None:
    """The compiled library of ``source`` (compiled and cached on first use), or None if it cannot be built."""
    source = Path(source)
    if source in _loaded:
        return _loaded[source]
    lib, reason = None, ""
    if env_choice("DEEPSPIKE_NATIVE", "1", ("0", "1")) == "0":
        reason = "disabled by DEEPSPIKE_NATIVE=0"
    else:
        cc = os.environ.get("CC") or "cc"
        if shutil.which(cc) is None:
            reason = f"no C compiler ({cc!r} not found; set CC)"
        else:
            for extra in _FLAG_SETS:
                path, reason = _compile(source, cc, _BASE_FLAGS + extra)
                if path is not None:
                    try:
                        lib, reason = ctypes.CDLL(str(path)), ""
                        break
                    except OSError as e:
                        reason = f"cannot load {path.name}: {e}"
    _loaded[source], _reasons[source] = lib, reason
    return lib


def unavailable_reason(source: Path) -> str:
    """Why ``load(source)`` returned None ("" if it did not, or was not called)."""
    return _reasons.get(Path(source), "")
