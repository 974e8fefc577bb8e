"""The candidates that enter the first rung: the space in an order fixed by the search seed,
screened one piece at a time (drops before training, then the theory screen) until enough
are kept. Every expression looked at is accounted for: kept, or dropped with its reason.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from actlab.errors import UserError
from actlab.search.config import SearchConfig
from actlab.search.screen import Drop, ProxyInit, dedupe, known_fingerprints, theory_screen
from actlab.search.space import (
    Candidate,
    default_space,
    read_space,
    with_learnable_constants,
)

# The proxies in which sign and reflection are exact symmetries (screen.dedupe): no
# residual connection and no normalisation, weights and biases from PyTorch's zero-mean
# uniform defaults. The MNIST-1D MLP has a residual connection, the transformer layer norms.
SYMMETRIC_PROXIES = frozenset({"cnn"})


@dataclass
class Selection:
    space_size: int  # expressions in the space (after removing repeated text)
    examined: int  # looked at, in the seed's order, until enough were kept
    kept: list[Candidate]
    drops: list[Drop] = field(default_factory=list)

    def drop_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.drops:
            counts[d.reason] = counts.get(d.reason, 0) + 1
        return counts


def load_space(config: SearchConfig) -> list[Candidate]:
    if config.space == "default":
        space = default_space(config.units, sample=config.space_sample, seed=config.seed)
    else:
        space = read_space(config.space)
    return with_learnable_constants(space) if config.learnable_constants else space


def proxy_init(config: SearchConfig) -> ProxyInit:
    """The theory screen's network: the MNIST-1D MLP's initialisation (ProxyInit's defaults)
    for every proxy; the CNN's and transformer's layers start from the same PyTorch default
    (variance 1/(3 fan_in)), so the same map is a fair first look for them."""
    return ProxyInit()


def select(config: SearchConfig, controls: list[str]) -> Selection:
    """Shuffle the space by the seed; screen it piece by piece until `config.candidates`
    pass, or the space runs out. A candidate named like a control is refused."""
    space = load_space(config)
    clash = sorted({c.name for c in space} & set(controls))
    if clash:
        raise UserError(
            f"search space names {clash[0]!r}, which is a control; rename the candidate"
        )
    clash = sorted({c.name for c in space} & set(config.known_racers()))
    if clash:
        raise UserError(
            f"search space names {clash[0]!r}, a built-in that races as a known activation; "
            "rename the candidate"
        )
    order = list(space)
    random.Random(config.seed).shuffle(order)
    # The controls and the known activations racing are functions kept already: a
    # candidate equal to one of them (up to sign or reflection) is no new find.
    seen = known_fingerprints([*controls, *config.known_racers()], config.modulo_scale)
    kept: list[Candidate] = []
    drops: list[Drop] = []
    examined = 0
    proxy = proxy_init(config)
    while len(kept) < config.candidates and examined < len(order):
        # Never more than are still needed: each piece passes at most that many, so the
        # search stops exactly at the count, having looked at nothing it did not use.
        piece = order[examined : examined + config.candidates - len(kept)]
        examined += len(piece)
        distinct, dropped = dedupe(
            piece,
            modulo_scale=config.modulo_scale,
            seen=seen,
            symmetric_proxy=config.proxy in SYMMETRIC_PROXIES,
        )
        drops += dropped
        passed, dropped = theory_screen(distinct, proxy)
        drops += dropped
        kept += passed
    if not kept:
        raise UserError(
            f"no candidate of the space ({len(space)} expressions) survived the drops "
            "before training; see drops.csv, or bring other expressions with --space"
        )
    return Selection(len(space), examined, kept, drops)
