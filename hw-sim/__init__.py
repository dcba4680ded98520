"""Simulated hardware: GPIO presses on mock pins, the simulated GPIO bus (``gpio``:
the ``tessera-sim`` pin factory; ``bus``, ``hardware``, ``control``: ``tessera sim
hardware`` and its control requests), printer and caller-board emulators on ptys,
scenario runner.

The simulator imports only the drivers' ports, never their encoders, so its
decoders are an independent check of what the drivers send.
"""
