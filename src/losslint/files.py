"""Finding, reading and decoding the files to lint. Every failure becomes a per-file `FileError`."""

from __future__ import annotations

import io
import os
import re
import stat
import tempfile
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from losslint.model import FileError

MAX_FILE_BYTES = 10 * 1024 * 1024  # a 10 MB Python file is generated data, not a loss
# libcst's native parser overflows the C stack (a segfault, not a RecursionError) on deeply nested code, and is
# quadratic on long operator chains; `nesting_error` refuses such files first. CPython itself allows 200 nested
# brackets and 100 indentation levels; 1,000 chained operators parse in about a second.
MAX_BRACKET_DEPTH = 200
MAX_INDENT_LEVELS = 100
MAX_OPERATOR_CHAIN = 1000
LINTABLE_SUFFIXES = (".py", ".pyi", ".ipynb")
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


def discover(paths: list[str], exclude: tuple[str, ...] = (), force_exclude: bool = False,
             root: str = ".") -> Iterator[Candidate]:
    """Yield lintable files under `paths`, honouring `.gitignore` at each given directory and `exclude` globs.

    Paths named explicitly are always yielded (even with another suffix), as Ruff does, unless `force_exclude` is set
    and an `exclude` glob (relative to `root`, the config file's folder) matches them: pre-commit passes every
    staged file by name.
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
            if force_exclude and exclude_spec is not None and _excluded(p, exclude_spec, root):
                continue
            seen.add(raw)
            yield Candidate(raw)


def _excluded(path: Path, spec: pathspec.PathSpec, root: str) -> bool:
    try:
        rel = path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        rel = path.as_posix()
    return spec.match_file(rel)


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
    data, error = read_limited(path, max_bytes)
    if error is not None:
        return None, error
    return decode(data)  # type: ignore[arg-type]


def read_limited(path: str, max_bytes: int = MAX_FILE_BYTES) -> tuple[bytes | None, FileError | None]:
    """The file's bytes, or a per-file error (not a regular file, too large, unreadable)."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            return None, FileError("unreadable", "is a directory")
        if not stat.S_ISREG(st.st_mode):
            return None, FileError("unreadable", "not a regular file (a FIFO, socket or device): reading it "
                                                 "could block")
        if st.st_size > max_bytes:
            return None, FileError("too-large", f"{st.st_size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit "
                                                "for one file")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        return None, FileError("unreadable", "no such file or directory")
    except PermissionError:
        return None, FileError("unreadable", "permission denied: the file cannot be read")
    except OSError as err:
        return None, FileError("unreadable", err.strerror or str(err))
    return data, None


def decode(data: bytes) -> tuple[str | None, FileError | None]:
    if b"\x00" in data:
        return None, FileError("decode-error", "binary file (contains NUL bytes), not Python source")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as err:
        return None, FileError("decode-error", f"bad encoding declaration: {err.msg}")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        bad = data[err.start:err.end].hex(" ")
        return None, FileError("decode-error", f"not valid {encoding} at line {line}, column {column} (byte(s) {bad}): "
                                               "save the file as UTF-8, or declare its encoding with a "
                                               "`# -*- coding: <name> -*-` line (PEP 263)")
    except LookupError as err:
        return None, FileError("decode-error", f"unknown encoding {encoding!r}: {err}")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, None


_Q1, _Q3, _D1, _D3 = "'", "'" * 3, '"', '"' * 3
_STRING = "|".join((
    _Q3 + r"(?:[^'\\]|\\.|'(?!''))*" + _Q3,
    _D3 + r'(?:[^"\\]|\\.|"(?!""))*' + _D3,
    _Q1 + r"(?:[^'\\\n]|\\.)*" + _Q1,
    _D1 + r'(?:[^"\\\n]|\\.)*' + _D1,
))
_OPERATOR = r"\*\*|//|<<|>>|<=|>=|==|!=|:=|[-+*/%@&|^~<>.]|\b(?:not|and|or|if|else|lambda|await|in|is)\b"
_SCAN_RE = re.compile(
    f"(?P<str>{_STRING})" + r"|(?P<comment>#[^\n]*)|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<cont>\\\r?\n)|(?P<nl>\n)"
    + f"|(?P<sep>[,;])|(?P<op>{_OPERATOR})",
    re.DOTALL,
)
_INDENT_RE = re.compile(r"[ \t\f]*")


def nesting_error(source: str) -> FileError | None:
    """A `too-large` error if the source nests deeper than the parser can take safely, else None.

    One regex pass, skipping strings and comments, measures what makes libcst's parser recurse: bracket depth,
    indentation levels, `elif` chains, and the operators and trailers (`a + b + ...`, `not not ...`, `x.a.b...`,
    `f()()...`, `lambda: lambda: ...`) chained along the current bracket path. Costs about 0.2 s per MB.
    """
    depth = 0
    runs = [0]  # operators chained at each open bracket level
    chain = 0  # sum(runs): the expression depth along the current bracket path
    indents = [0]
    elif_width, elifs = -1, 0
    for m in _SCAN_RE.finditer(source):
        kind = m.lastgroup
        if kind == "op" or kind == "open":
            runs[depth] += 1
            chain += 1
            if chain > MAX_OPERATOR_CHAIN:
                return _too_deep(source, m.start(), f"an expression nests or chains more than {MAX_OPERATOR_CHAIN} "
                                                    "operators")
            if kind == "open":
                depth += 1
                runs.append(0)
                if depth > MAX_BRACKET_DEPTH:
                    return _too_deep(source, m.start(), f"brackets nest more than {MAX_BRACKET_DEPTH} levels deep")
        elif kind == "close":
            if depth:
                chain -= runs.pop()
                depth -= 1
        elif kind == "sep":
            chain -= runs[depth]
            runs[depth] = 0
        elif kind == "nl" and depth == 0:
            chain = runs[0] = 0
            start = m.end()
            end = _INDENT_RE.match(source, start).end()  # type: ignore[union-attr]
            if end >= len(source) or source[end] in "#\r\n":
                continue  # blank or comment-only line: no indentation meaning
            width = len(source[start:end].expandtabs(8))
            while width < indents[-1]:
                indents.pop()
            if width > indents[-1]:
                indents.append(width)
                if len(indents) - 1 > MAX_INDENT_LEVELS:
                    return _too_deep(source, end, f"blocks nest more than {MAX_INDENT_LEVELS} indentation levels deep")
            if width <= elif_width or elif_width < 0:
                if source.startswith("elif", end) and not source[end + 4:end + 5].isidentifier():
                    elifs = elifs + 1 if width == elif_width else 1
                    elif_width = width
                    if elifs > MAX_OPERATOR_CHAIN:
                        return _too_deep(source, end, f"an if statement has more than {MAX_OPERATOR_CHAIN} elif "
                                                      "branches")
                elif not (width == elif_width and source.startswith("else", end)):
                    elif_width, elifs = -1, 0
    return None


def _too_deep(source: str, offset: int, what: str) -> FileError:
    line = source.count("\n", 0, offset) + 1
    return FileError("too-large", f"nesting too deep to analyse at line {line}: {what}")


class FileChangedError(OSError):
    """The file changed on disk between reading it and writing the fix: the write is refused."""


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write_atomic(path: str, original: bytes, new_text: str) -> None:
    """Write `new_text` in the file's own encoding (BOM and coding cookie kept; newlines are already the file's, since
    decoding does not translate them), through a temp file in the same folder renamed over the original, with the
    original's permission bits. Refused if the file no longer holds `original`."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(original).readline)
    data = new_text.encode(encoding)
    if read_bytes(path) != original:
        raise FileChangedError(f"{path} changed since it was read; not writing the fix")
    directory = os.path.dirname(os.path.abspath(path))
    mode = stat.S_IMODE(os.stat(path).st_mode)
    fd, tmp = tempfile.mkstemp(prefix=".losslint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
