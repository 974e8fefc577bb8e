"""A search's settings, its presets, and its hash (what a resume must leave unchanged).

The default is sized for under 30 minutes on a 2-core laptop (26.9 min measured at 163e972,
see docs/search.md): 1,000 candidates enter the first rung; five rungs of successive halving
(eta 3) on the MNIST-1D MLP bring them to five finalists; the finalists and the controls are
confirmed with 10 fresh seeds at the study's full budget (6,000 steps) on the MLP, then
carried with their nearest built-ins to tasks the search never saw (the transfer, 8 seeds).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from actlab.engine.architectures import ARCHITECTURES, NAMES
from actlab.errors import UserError

Architecture = Literal[NAMES]  # every registered architecture
ARCH_WORDS = {name: entry.word for name, entry in ARCHITECTURES.items()}  # in prose

# Settings that change how a search is executed, never its numbers.
NOT_HASHED = ("preset", "description", "executor", "workers", "address", "max_members")

HASHED_WHEN_SET = ("learnable_constants",)
TRANSFER_KEYS = ("transfer_seeds", "transfer_steps", "transfer_preset")


def search_presets() -> list[str]:
    """The search presets: TOML files in configs/search/, like the run presets."""
    from actlab.config import PRESET_DIRS

    return sorted({p.stem for d in PRESET_DIRS for p in (d / "search").glob("*.toml")})


def search_preset(name: str) -> dict[str, Any]:
    """A search preset's settings; one line naming the presets if there is none."""
    from actlab.config import PRESET_DIRS, read_toml
    from actlab.errors import closest, unknown_name

    for directory in PRESET_DIRS:
        path = directory / "search" / f"{name}.toml"
        if path.is_file():
            return read_toml(path)
    names = search_presets()
    raise UserError(unknown_name("search preset", name, names, near=closest(name, names)))


class SearchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: str | None = None
    description: str = ""
    seed: int = Field(0, ge=0, description="search seed: the sample, and every network's seed")
    space: str = Field(
        "default", description="'default' (Ramachandran et al.'s core unit) or a file"
    )
    units: int = Field(1, ge=1, le=2, description="core units composed in the default space")
    space_sample: int = Field(
        20_000, ge=1, description="draws from the two-unit space (too big to list)"
    )
    modulo_scale: bool = Field(False, description="f and c*f (c > 0) count as one function")
    learnable_constants: bool = Field(
        False, description="a candidate's constants become parameters trained with the weights"
    )
    candidates: int = Field(1000, ge=1, description="candidates that enter the first rung")
    proxy: Architecture = Field("mlp", description="the MNIST-1D architecture screened on")
    # None: the confirmation is on the proxy only, and the other MNIST-1D architectures
    # are transfer tasks (search/transfer.py), on fewer steps: that is what fits the
    # default search in 30 minutes (the CNN's confirmation alone had taken 14 of 26).
    second: Architecture | None = Field(
        None, description="a second architecture of the confirmation (none: only the proxy)"
    )
    controls: list[str] = Field(default_factory=lambda: ["ReLU", "GELU", "Swish"])
    # The built-ins that race beside the candidates through every rung (None: every
    # built-in that is not a control; [] none), so a finding is held against the field.
    known: list[str] | None = Field(
        None, description="built-ins screened beside the candidates (default: all)"
    )
    rung_steps: list[int] = Field(default_factory=lambda: [100, 200, 500, 1000, 2000])
    rung_seeds: list[int] = Field(default_factory=lambda: [1, 1, 2, 2, 3])
    eta: float = Field(3.0, gt=1, description="1/eta of a rung's candidates go on")
    finalists: int = Field(5, ge=1, description="candidates confirmed (top k)")
    confirm_seeds: int = Field(10, ge=1, le=1000)
    confirm_steps: int = Field(6000, ge=1, description="the proxy's full budget")
    holdout: int = Field(
        500, ge=1, description="training samples screening is scored on (never the test set)"
    )
    # Does it transfer (search/transfer.py): the finalists and their nearest built-ins on
    # tasks the search never saw, on fresh seeds.
    transfer_seeds: int = Field(
        8, ge=0, le=1000, description="fresh seeds of the transfer run (0: no transfer)"
    )
    transfer_steps: int = Field(
        1000,
        ge=1,
        description="Adam steps of the MNIST-1D architectures in the transfer (and the "
        "digits' epochs at most, where fewer than the study's 300)",
    )
    transfer_preset: str = Field(
        "sound", description="the run preset whose capacity and stability settings transfer uses"
    )
    executor: Literal["local", "process", "ray"] | None = None
    workers: int | None = Field(None, ge=1)
    address: str | None = None
    max_members: int = Field(64, ge=1, le=100_000)

    @field_validator("second", mode="before")
    @classmethod
    def _none(cls, value: Any) -> Any:
        return None if value in ("", "none") else value

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        if not self.rung_steps or len(self.rung_steps) != len(self.rung_seeds):
            raise ValueError(
                f"rung_steps {self.rung_steps} and rung_seeds {self.rung_seeds} must give "
                "one number per rung, for at least one rung"
            )
        if min(self.rung_steps) < 1 or min(self.rung_seeds) < 1:
            raise ValueError("every rung needs at least one step and one seed")
        if self.confirm_seeds < 2:
            raise ValueError(
                f"confirm_seeds {self.confirm_seeds} is too small to confirm anything: a "
                "paired test against ReLU needs at least 2 seeds (6 for p < 0.05 to be "
                "reachable); use --confirm-seeds 2 or more"
            )
        if self.transfer_seeds == 1:
            raise ValueError(
                "transfer_seeds 1 gives no interval and no test; use 2 or more, or 0 for no "
                "transfer"
            )
        if self.transfer_seeds:
            from actlab.config import available_presets

            presets = available_presets()
            if self.transfer_preset not in presets:
                raise ValueError(
                    f"transfer_preset {self.transfer_preset!r} is not a run preset; "
                    f"available: {', '.join(presets)}"
                )
        if "ReLU" not in self.controls:
            raise ValueError(
                f"controls {self.controls} must include ReLU: every finalist is tested against it"
            )
        if len(set(self.controls)) != len(self.controls):
            raise ValueError(f"controls listed twice: {self.controls}")
        if self.known:
            from actlab.activations import BUILTINS

            unknown = [k for k in self.known if k not in BUILTINS]
            if unknown:
                raise ValueError(
                    f"known {unknown[0]!r} is not a built-in activation; available: "
                    f"{', '.join(BUILTINS)}"
                )
            both = [k for k in self.known if k in self.controls]
            if both:
                raise ValueError(f"{both[0]} is a control already; list it once")
        return self

    def known_racers(self) -> list[str]:
        """The built-ins that race beside the candidates, in the table's order."""
        from actlab.activations import BUILTINS

        chosen = BUILTINS if self.known is None else self.known
        return [k for k in chosen if k not in self.controls]

    def hash(self) -> str:
        hashed = {k: v for k, v in self.model_dump(mode="json").items() if k not in NOT_HASHED}
        for key in HASHED_WHEN_SET:  # added later: earlier searches keep their hash
            if not hashed[key]:
                del hashed[key]
        if not self.transfer_seeds:  # so does one made before the transfer existed
            for key in TRANSFER_KEYS:
                del hashed[key]
        text = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def architectures(self) -> list[str]:
        """The confirmation's architectures: the proxy first."""
        return [self.proxy] + ([self.second] if self.second and self.second != self.proxy else [])


def search_config(
    preset: str | None = None, file: str | Path | None = None, **overrides: Any
) -> SearchConfig:
    """The preset (default: 'default'), then a TOML file of settings (the names of
    search.json's config), then the overrides given (None means unset)."""
    from actlab.config import read_toml

    name = preset or "default"
    raw = {**search_preset(name), "preset": name}
    source = f"search preset '{name}'"
    if file is not None:
        raw.update(read_toml(Path(file)))
        source = f"search settings '{file}'"
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return build(raw, source=source)


def build(raw: dict[str, Any], source: str = "search settings") -> SearchConfig:
    try:
        return SearchConfig(**raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise UserError(f"{source}: {where}: {message}") from None
