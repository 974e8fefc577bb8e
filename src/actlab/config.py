"""The run configuration: presets are data (TOML files), validated into one RunConfig.

A preset or config file has top-level run settings and one table per study:

    seeds = 6
    activations = ["Linear", "Tanh", "ReLU"]
    studies = ["gradient_flow"]

    [gradient_flow]
    depths = [5, 10, 20, 50]

The resolved config (every default filled in) is saved in the run's manifest, and its
hash decides whether a run directory may be resumed with it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from actlab.errors import UserError, closest, unknown_name

# Fields that change how a run is executed, never its numbers; left out of the hash so a
# run can be resumed with another executor or batch size.
NOT_HASHED = (
    "preset",
    "description",
    "executor",
    "workers",
    "address",
    "max_members",
    "batch_memory_mb",
    "focus",
)

PRESET_DIRS = (
    Path(__file__).parent / "configs",  # installed wheel
    Path(__file__).resolve().parents[2] / "configs",  # source checkout
)


HASHED_WHEN_SET = ("flush_denormals",)
# Study options added later, likewise: hashed only when they differ from these defaults.
STUDY_HASHED_WHEN_CHANGED = {"mnist1d": {"time_steps": True, "holdout": 0}}

# The default number of seeds: the fewest with which ONE paired sign-flip test can reach
# p < 0.05 at all. Its smallest p with n seeds is 2 / 2^n (a difference of the same sign in
# every seed): 0.0625 with 5 seeds, 0.031 with 6. A family of m such tests corrected by Holm
# needs more (stats.seeds_for_family: 8 for 4 or 5 comparisons, 9 for 7), so a preset whose
# families must answer sets its own seeds (the sound preset: 8) and the report says when a
# family cannot reach 0.05 at the run's seeds. With 6 seeds, Nemenyi's test separates an
# activation ranked first among 8 in every seed from any ranked 5.3 or lower on average
# (critical difference 4.29). tests/test_config.py keeps this in step.
DEFAULT_SEEDS = 6
# The main job: the tutorial's four questions asked soundly (configs/sound.toml).
DEFAULT_PRESET = "sound"


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: str | None = None
    description: str = ""
    seed: int = Field(0, ge=0, description="run seed: every trial's randomness derives from it")
    seeds: int = Field(
        DEFAULT_SEEDS, ge=1, le=1000, description="independent repetitions per configuration"
    )
    activations: list[str] = Field(min_length=1)
    studies: list[str] = Field(min_length=1)
    device: Literal["cpu", "cuda"] = "cpu"
    dtype: Literal["float32", "float64"] = "float32"
    exact: bool = Field(False, description="bit-identical to the reference loop (slower)")
    flush_denormals: bool = Field(
        False,
        description="treat float values below ~1e-38 as zero (CPU; faster on CPUs where "
        "subnormal arithmetic is slow; changes the numbers of networks whose signals get "
        "that small)",
    )
    executor: Literal["local", "process", "ray"] | None = Field(
        None, description="default: a process pool when there is more than one core"
    )
    workers: int | None = Field(None, ge=1)
    address: str | None = Field(
        None,
        description="Ray cluster for --executor ray: auto or HOST:PORT (default: a local Ray)",
    )
    max_members: int = Field(64, ge=1, le=100_000, description="networks per stacked batch")
    focus: str | None = Field(
        None, description="an activation the report profiles against the others"
    )
    batch_memory_mb: int = Field(
        128, ge=1, le=1_000_000, description="rough memory cap of one stacked batch"
    )
    study_config: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _resolve_studies(self) -> RunConfig:
        from actlab import studies

        if len(set(self.studies)) != len(self.studies):
            raise ValueError(f"studies listed twice: {self.studies}")
        if len({a.strip() for a in self.activations}) != len(self.activations):
            raise ValueError(f"activations listed twice: {self.activations}")
        for name in self.study_config:
            studies.get_study(name)  # an unknown table name fails with the list
        resolved = {}
        for name in self.studies:
            study = studies.get_study(name)
            try:
                resolved[name] = study.Config(**self.study_config.get(name, {})).model_dump()
            except ValidationError as e:
                raise StudyConfigError(name, e) from None
        self.study_config = resolved
        return self

    def study(self, name: str) -> BaseModel:
        from actlab import studies

        return studies.get_study(name).Config(**self.study_config[name])

    def hashed_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.model_dump(mode="json").items() if k not in NOT_HASHED}
        # Options added later count only when set, so older runs keep their hash (resume).
        for key in HASHED_WHEN_SET:
            if not out[key]:
                del out[key]
        for study, defaults in STUDY_HASHED_WHEN_CHANGED.items():
            table = out["study_config"].get(study)
            for key, default in defaults.items():
                if table is not None and table.get(key) == default:
                    del table[key]
        return out

    def hash(self) -> str:
        text = json.dumps(self.hashed_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def available_presets() -> list[str]:
    names = {p.stem for d in PRESET_DIRS if d.is_dir() for p in d.glob("*.toml")}
    return sorted(names)


def preset_path(name: str) -> Path:
    for directory in PRESET_DIRS:
        path = directory / f"{name}.toml"
        if path.is_file():
            return path
    presets = available_presets()
    raise UserError(unknown_name("preset", name, presets, near=closest(name, presets)))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UserError(f"config file '{path}' does not exist; check the path") from None
    except IsADirectoryError:
        raise UserError(f"config file '{path}' is a directory; give a .toml file") from None
    except PermissionError:
        raise UserError(f"config file '{path}' is not readable; check its permissions") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UserError(
            f"config file '{path}' is not valid TOML: line {line} is not UTF-8 text "
            f"(byte 0x{data[e.start]:02x}); save the file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(toml_error_message(path, text, e)) from None


TOML_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")


def toml_error_message(path: Path, text: str, error: tomllib.TOMLDecodeError) -> str:
    """'config file 'c.toml' is not valid TOML at line 3, column 9: invalid value (the line
    reads 'seeds = ')'. The position comes from the error's lineno/colno (Python 3.14) or
    from the '(at line L, column C)' that ends its message (3.11 to 3.13)."""
    message = str(error.args[0]) if error.args else str(error)
    line, column = getattr(error, "lineno", None), getattr(error, "colno", None)
    found = TOML_POSITION.search(message)
    if found:
        message = message[: found.start()]
        if line is None and found.group(1):
            line, column = int(found.group(1)), int(found.group(2))
    lines = text.splitlines()
    if line is None:  # at the end of the document
        line = max(len(lines), 1)
        where = f"the end of the file (line {line})"
    else:
        where = f"line {line}" + (f", column {column}" if column else "")
    reads = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    if len(reads) > 60:
        reads = reads[:57] + "..."
    shown = f" (the line reads '{reads}')" if reads else ""
    reason = message[:1].lower() + message[1:] if message else "syntax error"
    return f"config file '{path}' is not valid TOML at {where}: {reason}{shown}"


def split_tables(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict]]:
    """Top-level run settings vs one table per study."""
    settings = {k: v for k, v in raw.items() if k == "study_config" or not isinstance(v, dict)}
    tables = {k: v for k, v in raw.items() if k != "study_config" and isinstance(v, dict)}
    return settings, tables


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Preset (default `tutorial`), then a config file, then explicit overrides."""
    raw: dict[str, Any] = {}
    file_raw = read_toml(Path(config_file)) if config_file is not None else {}
    preset = preset or file_raw.get("preset") or (DEFAULT_PRESET if config_file is None else None)
    if preset is not None:
        raw = read_toml(preset_path(preset))
        raw["preset"] = preset
    raw = merge(raw, file_raw)
    raw = merge(raw, {k: v for k, v in (overrides or {}).items() if v is not None})
    source = f"config file '{config_file}'" if config_file else f"preset '{preset}'"
    if any(v is not None for v in (overrides or {}).values()):
        source += " with the command-line settings"
    return build_config(raw, source=source)


def build_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    settings, tables = split_tables(raw)
    settings["study_config"] = merge(tables, settings.get("study_config", {}))
    unknown = unknown_settings(settings)
    if unknown:
        listed = ", ".join(unknown)
        them = "them" if len(unknown) > 1 else "it"
        raise UserError(
            f"{source}: unknown setting{'s' if len(unknown) > 1 else ''} {listed}; "
            f"remove or rename {them} (the presets in 'actlab list presets' show every setting)"
        )
    try:
        return RunConfig(**settings)
    except ValidationError as e:
        raise UserError(describe_validation_error(e, source)) from None
    except UserError:
        raise
    except ValueError as e:
        raise UserError(f"invalid {source}: {e}") from None


class StudyConfigError(ValueError):
    """A study's table failed its own validation: carries the study's name, so the message
    can name the field as `study.field`."""

    def __init__(self, study: str, error: ValidationError) -> None:
        super().__init__(str(error))
        self.study, self.error = study, error


def unknown_settings(settings: dict[str, Any]) -> list[str]:
    """Every key that is no setting, at the top level and in the tables of the studies the
    config runs, e.g. ['colour', '[stability] lr_stepz (did you mean lr_steps?)'], so that a
    config with several mistakes is told all of them at once."""
    from actlab import studies

    found = []
    fields = [f for f in RunConfig.model_fields if f != "study_config"]
    for key in settings:
        if key not in RunConfig.model_fields:
            found.append(with_hint(key, key, fields))
    tables = settings.get("study_config")
    listed = settings.get("studies")
    if not isinstance(tables, dict) or not isinstance(listed, list):
        return found
    for name, table in tables.items():
        if name not in listed or not isinstance(table, dict):
            continue
        try:
            config_class = studies.get_study(name).Config
        except UserError:
            continue  # an unknown study: the validation names it, with the list
        try:
            config_class(**table)
        except ValidationError as e:
            for err in e.errors():
                if err["type"] != "extra_forbidden":
                    continue
                loc = [str(p) for p in err["loc"]]
                where = table_location([name, *loc])
                model = config_class
                for part in loc[:-1]:  # the model that holds the key, for the hint
                    inner = getattr(model, "model_fields", {}).get(part)
                    model = getattr(inner, "annotation", None) if inner else None
                known = list(getattr(model, "model_fields", {}))
                found.append(with_hint(where, loc[-1], known))
        except Exception:  # noqa: BLE001 - other problems are told by the validation itself
            continue
    return found


def with_hint(where: str, key: str, known: list[str]) -> str:
    near = closest(key, known)
    return f"{where} (did you mean {near}?)" if near else where


def table_location(loc: list[str]) -> str:
    """['stability', 'lr_steps'] -> '[stability] lr_steps'; ['seeds'] -> 'seeds';
    ['mnist1d', 'data', 'foo'] -> '[mnist1d.data] foo'."""
    if len(loc) <= 1:
        return loc[0] if loc else "config"
    return f"[{'.'.join(loc[:-1])}] {loc[-1]}"


def plain(value: Any) -> str:
    """A value as a config file may spell it: 0.1, 'cpu', [1, 2], true; cut at 80
    characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "nothing"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def sentence(err: dict[str, Any]) -> str:
    """A pydantic error as a plain phrase about the setting ('must be at least 1')."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "greater_than":
        return "must be positive" if ctx.get("gt") == 0 else f"must be above {ctx.get('gt')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "less_than":
        return f"must be below {ctx.get('lt')}"
    if kind == "multiple_of":
        return f"must be a multiple of {ctx.get('multiple_of')}"
    if kind == "missing":
        return "is required and not set"
    if kind == "extra_forbidden":
        return "is not a setting; remove or rename it"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "must be a number" if kind != "finite_number" else "must be a finite number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind in ("string_type", "string_unicode"):
        return 'must be text in quotes, e.g. "name"'
    if kind in ("literal_error", "enum"):
        return f"must be {ctx.get('expected')}"
    if kind in ("list_type", "tuple_type", "set_type", "iterable_type"):
        return "must be a valid list, in [brackets]"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a table"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"must have at least {n} item{'' if n == 1 else 's'}"
    if kind == "too_long":
        n = ctx.get("max_length")
        return f"must have at most {n} item{'' if n == 1 else 's'}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    message = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message[:1].lower() + message[1:]


# Parts of a pydantic location that name a branch of a union type, not a setting.
TYPE_TAGS = frozenset({"int", "float", "str", "bool", "none", "list", "dict", "tuple"})


def describe_validation_error(error: ValidationError, source: str) -> str:
    """One line naming each setting at fault, in plain words, with the value given:
    "config file 'c.toml': [stability] lrs: learning rates must be positive (got -1.0)"."""
    problems: dict[str, list[tuple[str, Any]]] = {}
    for err in error.errors():
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, StudyConfigError):
            entries = [([inner.study, *e["loc"]], e) for e in inner.error.errors()]
        else:
            entries = [(list(err["loc"]), err)]
        for loc, e in entries:
            parts = [str(p) for p in loc if not isinstance(p, int)]
            parts = [p for p in parts if "[" not in p and p not in TYPE_TAGS]
            if parts[:1] == ["study_config"]:
                parts = parts[1:]
            if isinstance(inner, StudyConfigError) and len(loc) == 1:
                where = f"[{parts[0]}]"  # the study's own check, over several settings
            else:
                where = table_location(parts) if parts else ""
            problems.setdefault(where, []).append((sentence(e), e))
    described = []
    for where, found in problems.items():
        phrases = list(dict.fromkeys(p for p, _ in found))
        if all(p.startswith("must be ") for p in phrases):
            phrase = "must be " + ", or ".join(p[len("must be ") :] for p in phrases)
        else:
            phrase = "; ".join(phrases)
        first = found[0][1]
        given = first.get("input")
        told = first["type"] in ("missing", "value_error", "assertion_error") and (
            isinstance(given, dict) or first["type"] == "missing"
        )  # a table's own check speaks of its settings; a missing one has no value
        shown = "" if told or "(got " in phrase else f" (got {plain(given)})"
        described.append(f"{where}: {phrase}{shown}" if where else f"{phrase}{shown}")
    more = f" (and {len(described) - 3} more)" if len(described) > 3 else ""
    return f"{source}: " + "; ".join(described[:3]) + more


def config_differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The settings that differ between two configs' hashed dicts, e.g.
    ['seeds: 2 in the run, 3 here', '[gradient_flow] width: 8 in the run, 16 here']."""
    a, b = flatten_settings(before), flatten_settings(after)
    # A study's table is compared only where both ran it; 'studies' tells the rest.
    tables_a, tables_b = before.get("study_config") or {}, after.get("study_config") or {}
    one_side = tuple(f"[{s}" for s in set(tables_a) ^ set(tables_b))
    a = {k: v for k, v in a.items() if not k.startswith(one_side)}
    b = {k: v for k, v in b.items() if not k.startswith(one_side)}
    found = []
    for key in dict.fromkeys([*a, *b]):
        old, new = a.get(key, NOT_SET), b.get(key, NOT_SET)
        if old != new:
            found.append(f"{key}: {shown_setting(old)} in the run, {shown_setting(new)} here")
    return found


NOT_SET = object()


def shown_setting(value: Any) -> str:
    return "not set" if value is NOT_SET else plain(value)


def flatten_settings(config: dict[str, Any], table: list[str] | None = None) -> dict[str, Any]:
    """{'seeds': 2, '[gradient_flow] width': 8, '[mnist1d.data] seed': 1, ...}"""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if table is None and key == "study_config" and isinstance(value, dict):
            for study, settings in value.items():
                if isinstance(settings, dict):
                    out.update(flatten_settings(settings, [study]))
                else:
                    out[f"[{study}]"] = settings
        elif table is not None and isinstance(value, dict) and value:
            out.update(flatten_settings(value, [*table, key]))
        else:
            out[table_location([*(table or []), key]) if table else key] = value
    return out
