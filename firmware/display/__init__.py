"""Caller board and voice: board content, announcements and the display role.

    from tessera.display.factory import build_role
    role = build_role(cfg, clock, snapshot=engine.snapshot, emit=emit)
    role.start(); bus.subscribe(role.on_event)
"""
