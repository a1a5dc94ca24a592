"""The training loop and the pieces it is made of (phases, scheduler, EMA, state)."""
