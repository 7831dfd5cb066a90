"""Finding, reading and decoding the files to lint. Every failure becomes a per-file `FileError`."""

from __future__ import annotations

import io
import os
import stat
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from losslint.model import FileError

MAX_FILE_BYTES = 10 * 1024 * 1024  # a 10 MB Python file is generated data, not a loss
LINTABLE_SUFFIXES = (".py", ".pyi")
DEFAULT_EXCLUDES = (".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "env", "__pycache__", "node_modules",
                    "build", "dist", ".eggs", "site-packages", ".mypy_cache", ".pytest_cache", ".ruff_cache",
                    ".ipynb_checkpoints")


@dataclass(frozen=True)
class Candidate:
    """A path to lint, or a path that could not even be listed (then `error` is set)."""

    path: str
    error: FileError | None = None


def _gitignore_spec(root: Path) -> pathspec.PathSpec | None:
    patterns: list[str] = []
    for name in (".gitignore", ".ignore"):
        f = root / name
        try:
            patterns.extend(f.read_text(encoding="utf-8", errors="replace").splitlines())
        except OSError:
            continue
    if not patterns:
        return None
    return pathspec.PathSpec.from_lines("gitwildmatch", patterns)


def discover(paths: list[str], exclude: tuple[str, ...] = ()) -> Iterator[Candidate]:
    """Yield lintable files under `paths`, honouring `.gitignore` at each given directory and `exclude` globs.

    Paths named explicitly are always yielded (even with another suffix), as Ruff does.
    """
    exclude_spec = pathspec.PathSpec.from_lines("gitwildmatch", list(exclude)) if exclude else None
    seen: set[str] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_symlink() and not p.exists():
            yield Candidate(raw, FileError("unreadable", "broken symbolic link"))
            continue
        if not p.exists():
            yield Candidate(raw, FileError("unreadable", "no such file or directory"))
            continue
        if p.is_dir():
            yield from _walk(p, exclude_spec, seen)
        elif raw not in seen:
            seen.add(raw)
            yield Candidate(raw)


def _walk(root: Path, exclude_spec: pathspec.PathSpec | None, seen: set[str]) -> Iterator[Candidate]:
    ignore = _gitignore_spec(root)
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except PermissionError:
            yield Candidate(str(d), FileError("unreadable", "permission denied: the directory cannot be listed"))
            continue
        except OSError as err:
            yield Candidate(str(d), FileError("unreadable", f"the directory cannot be listed: {err.strerror}"))
            continue
        subdirs = []
        for e in entries:
            rel = os.path.relpath(e.path, root)
            if e.name in DEFAULT_EXCLUDES:
                continue
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            rel_match = rel + "/" if is_dir else rel
            if ignore is not None and ignore.match_file(rel_match):
                continue
            if exclude_spec is not None and exclude_spec.match_file(rel_match):
                continue
            if is_dir:
                subdirs.append(Path(e.path))
                continue
            if not e.name.endswith(LINTABLE_SUFFIXES):
                continue
            if e.is_symlink() and not os.path.exists(e.path):
                yield Candidate(e.path, FileError("unreadable", "broken symbolic link"))
                continue
            if e.path not in seen:
                seen.add(e.path)
                yield Candidate(e.path)
        stack.extend(reversed(subdirs))


def read_source(path: str, max_bytes: int = MAX_FILE_BYTES) -> tuple[str | None, FileError | None]:
    """Read and decode a file per PEP 263 (BOM and coding cookie). Returns (text, None) or (None, error)."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            return None, FileError("unreadable", "is a directory")
        if st.st_size > max_bytes:
            return None, FileError("too-large", f"{st.st_size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit "
                                                "for one file")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        return None, FileError("unreadable", "no such file or directory")
    except PermissionError:
        return None, FileError("unreadable", "permission denied")
    except OSError as err:
        return None, FileError("unreadable", err.strerror or str(err))
    return decode(data)


def decode(data: bytes) -> tuple[str | None, FileError | None]:
    if b"\x00" in data[:8192]:
        return None, FileError("decode-error", "binary file (contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as err:
        return None, FileError("decode-error", f"bad encoding declaration: {err.msg}")
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as err:
        return None, FileError("decode-error", f"not valid {encoding}: {err}")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, None
