"""Every random generator a run draws from, captured as plain data and restored exactly.

The captured state goes into checkpoints, which are read with ``weights_only=True``: so it
holds tensors, tuples and numbers only. NumPy's own state is a tuple around an ndarray, which
a safe reader would refuse; it is kept as a tensor of its key plus the scalars instead.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def numpy_state(state: tuple[Any, ...]) -> dict[str, Any]:
    """``np.random.get_state()`` as plain data (also used to migrate format-1 checkpoints)."""
    bit_generator, key, pos, has_gauss, cached_gaussian = state
    return {"bit_generator": str(bit_generator),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos), "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian)}


def capture_rng() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": numpy_state(np.random.get_state()),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    saved = state["numpy"]
    np.random.set_state((saved["bit_generator"], saved["key"].numpy().astype(np.uint32),
                         saved["pos"], saved["has_gauss"], saved["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
