"""Randomness belongs to the trial.

Every random stream is derived from (run seed, a key naming the stream), never from a
global generator, so a trial's numbers do not depend on which trials ran before it, on
its batch-mates, or on the executor.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(run_seed: int, *key: object) -> int:
    """A 63-bit seed that is a pure function of the run seed and the stream key."""
    text = "|".join([str(run_seed), *(str(part) for part in key)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def generator(run_seed: int, *key: object) -> torch.Generator:
    """A fresh CPU generator for one stream; CPU so that draws are identical on any device."""
    return torch.Generator(device="cpu").manual_seed(derive_seed(run_seed, *key))
