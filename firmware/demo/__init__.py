"""``tessera demo``: a whole branch day on simulated hardware in virtual time."""
