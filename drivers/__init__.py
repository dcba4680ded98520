"""Device drivers behind small ``typing.Protocol`` ports.

Drivers never import the firmware; only ``tessera.wiring`` chooses real or
simulated hardware.
"""
