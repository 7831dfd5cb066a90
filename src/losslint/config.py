"""Settings from `[tool.losslint]` in pyproject.toml or from losslint.toml; the nearest file to a linted file wins,
command-line flags win over files. Unknown keys and codes are errors that name the file and the key."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath

import pathspec

from losslint.model import Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KEYS = frozenset({"select", "ignore", "extend-select", "exclude", "per-file-ignores", "severity", "rules"})
SEVERITIES = {"error": Severity.ERROR, "warning": Severity.WARNING, "info": Severity.INFORMATION,
              "information": Severity.INFORMATION, "hint": Severity.HINT}


class ConfigError(ValueError):
    """A configuration file or flag that cannot be used (exit status 2)."""


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = ("LL",)
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    severity: dict[str, Severity] = field(default_factory=dict)
    rule_options: dict[str, dict[str, object]] = field(default_factory=dict)
    warn_unused_ignores: bool = False
    root: str = "."  # the folder globs are relative to
    source: str | None = None  # the config file these came from

    def ignored_for(self, path: str) -> tuple[str, ...]:
        """Codes ignored for `path` by per-file-ignores."""
        if not self.per_file_ignores:
            return ()
        try:
            rel = PurePosixPath(Path(path).resolve().relative_to(Path(self.root).resolve()).as_posix())
        except ValueError:
            rel = PurePosixPath(Path(path).as_posix())
        out: list[str] = []
        for pattern, codes in self.per_file_ignores:
            if pathspec.PathSpec.from_lines("gitwildmatch", [pattern]).match_file(str(rel)):
                out.extend(codes)
        return tuple(out)


@dataclass(frozen=True)
class Overrides:
    """What the command line says; `None` means "not given"."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    config: str | None = None
    warn_unused_ignores: bool = False
    force_exclude: bool = False


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return tuple(value)


def _check_codes(codes: tuple[str, ...], where: str) -> None:
    from losslint.rules import all_rules

    rules = all_rules()
    for c in codes:
        if not any(r.code.upper().startswith(c.strip().upper()) or r.name == c.strip().lower() for r in rules) \
                or not c.strip():
            raise ConfigError(f"{where}: unknown rule code, prefix or name {c!r}")


def load_file(path: Path) -> Settings | None:
    """Settings from one file, or None when a pyproject.toml has no [tool.losslint] table."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from err
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("losslint")
        if table is None:
            return None
        prefix = "[tool.losslint]"
    else:
        table = data
        prefix = ""
    return _parse(table, path, prefix)


def _parse(table: dict, path: Path, prefix: str) -> Settings:
    where = f"{path}: {prefix}".rstrip(": ") if prefix else str(path)
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    s = Settings(root=str(path.parent), source=str(path))
    if "select" in table:
        s = replace(s, select=_str_list(table["select"], f"{where} select"))
    if "ignore" in table:
        s = replace(s, ignore=_str_list(table["ignore"], f"{where} ignore"))
    if "extend-select" in table:
        s = replace(s, extend_select=_str_list(table["extend-select"], f"{where} extend-select"))
    for key, codes in (("select", s.select), ("ignore", s.ignore), ("extend-select", s.extend_select)):
        _check_codes(codes, f"{where} {key}")
    if "exclude" in table:
        s = replace(s, exclude=_str_list(table["exclude"], f"{where} exclude"))
    if "per-file-ignores" in table:
        pfi = table["per-file-ignores"]
        if not isinstance(pfi, dict):
            raise ConfigError(f"{where} per-file-ignores must be a table of glob = [codes]")
        pairs = []
        for glob, codes in pfi.items():
            codes_t = _str_list(codes, f"{where} per-file-ignores.{glob!r}")
            _check_codes(codes_t, f"{where} per-file-ignores.{glob!r}")
            pairs.append((glob, codes_t))
        s = replace(s, per_file_ignores=tuple(pairs))
    if "severity" in table:
        sev = table["severity"]
        if not isinstance(sev, dict):
            raise ConfigError(f"{where} severity must be a table of CODE = \"error\"|\"warning\"|\"info\"|\"hint\"")
        out = {}
        for code, level in sev.items():
            _check_exact_code(code, f"{where} severity")
            if level not in SEVERITIES:
                raise ConfigError(f"{where} severity.{code}: unknown level {level!r}")
            out[code.upper()] = SEVERITIES[level]
        s = replace(s, severity=out)
    if "rules" in table:
        s = replace(s, rule_options=_rule_options(table["rules"], where))
    return s


def _check_exact_code(code: str, where: str) -> None:
    from losslint.rules import rule_by_id

    if rule_by_id(code) is None:
        raise ConfigError(f"{where}: unknown rule {code!r}")


def _rule_options(rules: object, where: str) -> dict[str, dict[str, object]]:
    from losslint.rules import rule_by_id

    if not isinstance(rules, dict):
        raise ConfigError(f"{where} rules must be a table of [rules.LLxxx] tables")
    out: dict[str, dict[str, object]] = {}
    for code, options in rules.items():
        rule = rule_by_id(code)
        if rule is None:
            raise ConfigError(f"{where} rules: unknown rule {code!r}")
        if not isinstance(options, dict):
            raise ConfigError(f"{where} rules.{code} must be a table")
        for key, value in options.items():
            if key not in rule.options:
                known = ", ".join(sorted(rule.options)) or "none"
                raise ConfigError(f"{where} rules.{code}: unknown option {key!r} (known: {known})")
            default = rule.options[key]
            if default is not None and not isinstance(value, type(default)):
                raise ConfigError(f"{where} rules.{code}.{key} must be {type(default).__name__}")
        out[rule.code] = dict(options)
    return out


@lru_cache(maxsize=256)
def _config_in(directory: str) -> Settings | None:
    d = Path(directory)
    for name in ("losslint.toml", "pyproject.toml"):
        f = d / name
        if f.is_file():
            s = load_file(f)
            if s is not None:
                return s
    return None


def discover_for(path: str) -> Settings:
    """The nearest config for `path` (a file or folder), walking up to the filesystem root; defaults if none."""
    p = Path(path).resolve()
    d = p if p.is_dir() else p.parent
    for parent in (d, *d.parents):
        s = _config_in(str(parent))
        if s is not None:
            return s
    return Settings()


def resolve(path: str, overrides: Overrides) -> Settings:
    base = load_file(Path(overrides.config)) if overrides.config else discover_for(path)
    if base is None:
        raise ConfigError(f"{overrides.config}: has no [tool.losslint] table")
    for key, codes in (("--select", overrides.select or ()), ("--ignore", overrides.ignore),
                       ("--extend-select", overrides.extend_select)):
        _check_codes(tuple(codes), key)
    return replace(
        base,
        select=overrides.select if overrides.select else base.select,
        ignore=base.ignore + overrides.ignore,
        extend_select=base.extend_select + overrides.extend_select,
        exclude=base.exclude + overrides.exclude,
        warn_unused_ignores=overrides.warn_unused_ignores,
    )
