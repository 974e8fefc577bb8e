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
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from actlab.errors import UserError

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
    raise UserError(f"unknown preset '{name}'; available: {', '.join(available_presets())}")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"config file '{path}' does not exist; check the path") from None
    except IsADirectoryError:
        raise UserError(f"config file '{path}' is a directory; give a .toml file") from None
    except PermissionError:
        raise UserError(f"config file '{path}' is not readable; check its permissions") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"config file '{path}' is not valid TOML: {e}") from None


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


def describe_validation_error(error: ValidationError, source: str) -> str:
    """One line naming the field, the problem and the value given."""
    first = error.errors()[0]
    inner = first.get("ctx", {}).get("error")
    if isinstance(inner, StudyConfigError):
        error, prefix = inner.error, [inner.study]
        first = error.errors()[0]
    else:
        prefix = []
    loc = prefix + [str(p) for p in first["loc"]]
    if loc[:1] == ["study_config"]:
        loc = loc[1:]
    where = ".".join(loc) or "config"
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    given = first.get("input")
    shown = "" if isinstance(given, dict) or first["type"] == "missing" else f" (got {given!r})"
    more = f" (and {len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
    return f"invalid {where} in {source}: {message}{shown}{more}"
