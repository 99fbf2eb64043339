"""numba's on-disk kernel cache, made stale when any deepspike module a kernel's file imports changes.

numba's ``cache=True`` stamps a cached kernel with a hash of the kernel's own source file only. A kernel that
calls helpers from another module (``layers.batchnorm_neuron_kernels`` calls ``neurons.fused_kernels``' rows)
keeps running the old helpers after that other module is edited, until its own file changes: a documented numba
limitation (numba#1833, numba#8396). ``track_imported_sources()``, called by every kernel module before its first
``@njit``, puts locators in front of numba's for files inside the deepspike package. Their stamp is numba's stamp
of the file together with a SHA-256 over the deepspike modules the file imports, directly or through other
deepspike modules (read from the import statements, ``import_closure``), so an edit to any of those recompiles the
kernel. The cache directories are numba's own (``NUMBA_CACHE_DIR``, ``__pycache__``, the user-wide one); files
outside the package and ``NUMBA_CACHE_LOCATOR_CLASSES`` are left to numba.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # .../deepspike


@functools.cache
def _module_file(module: str, root: Path) -> Path | None:
    """The source file of ``deepspike.a.b`` under ``root`` (the package directory), or None (memoised: a
    module's file does not move while the process runs)."""
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _imported_modules(path: Path, package: str) -> frozenset[str]:
    """The ``package`` modules ``path`` imports (``import p.x``, ``from p.x import y``: ``p.x`` and ``p.x.y``)."""
    st = path.stat()
    return _parsed_imports(str(path), package, st.st_mtime_ns, st.st_size)


@functools.cache
def _parsed_imports(path: str, package: str, mtime_ns: int, size: int) -> frozenset[str]:
    """``_imported_modules`` read from the file (memoised on its mtime and size, as ``_file_digest``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(Path(path).read_text(), path)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == package)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == package:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return frozenset(names)


def import_closure(path: Path, root: Path = PACKAGE_ROOT) -> list[Path]:
    """``path`` and every module of the package at ``root`` it imports, directly or through others, sorted."""
    seen: set[Path] = set()
    todo = [path.resolve()]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for module in _imported_modules(current, root.name):
            found = _module_file(module, root)
            if found is not None:
                todo.append(found)
    return sorted(seen)


@functools.cache
def _file_digest(path: str, mtime_ns: int, size: int) -> bytes:
    """SHA-256 of a file's bytes (memoised on its mtime and size, so a file changed in this process is re-read)."""
    return hashlib.sha256(Path(path).read_bytes()).digest()


def closure_stamp(path: Path, root: Path = PACKAGE_ROOT) -> str:
    """A hex SHA-256 over the relative names and contents of ``import_closure(path, root)``."""
    digest = hashlib.sha256()
    for file in import_closure(path, root):
        st = file.stat()
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(_file_digest(str(file), st.st_mtime_ns, st.st_size))
    return digest.hexdigest()


def _inside(py_file: str, root: Path) -> bool:
    return os.path.exists(py_file) and Path(py_file).resolve().is_relative_to(root)


def _tracking(base: type, root: Path) -> type:
    """A subclass of numba locator ``base`` for files under ``root``, stamped with ``closure_stamp`` as well."""

    class Tracking(base):
        def get_source_stamp(self):
            return super().get_source_stamp(), closure_stamp(Path(self._py_file), root)

        @classmethod
        def from_function(cls, py_func, py_file):
            return super().from_function(py_func, py_file) if _inside(py_file, root) else None

    Tracking.__name__ = Tracking.__qualname__ = f"DependencyTracking{base.__name__}"
    return Tracking


def track_imported_sources(root: Path = PACKAGE_ROOT) -> bool:
    """Put the dependency-stamped locators for files under ``root`` in front of numba's (once per ``root``);
    False where this numba lacks the locator classes (the cache then behaves as numba's own)."""
    from numba.core import caching

    bases = [getattr(caching, name, None) for name in
             ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")]
    impl = getattr(caching, "CacheImpl", None)
    if impl is None or None in bases:
        return False
    installed = getattr(impl, "_deepspike_tracked_roots", set())
    if root not in installed:
        impl._locator_classes = [_tracking(base, root) for base in bases] + list(impl._locator_classes)
        impl._deepspike_tracked_roots = installed | {root}
    return True
