"""What one process runs (``Branch``) and where each device keeps its store.

Shared by ``tessera.wiring`` (which assembles a branch) and
``tessera.roles.link`` (which connects it to MQTT), so neither imports the other
back.

    branch = build_branch(cfg, clock, roles=("all",), sim=True)   # tessera.wiring
    branch.tick(); branch.close()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tessera.bus import Bus
from tessera.clock import Clock
from tessera.config import BranchConfig
from tessera.roles.counter import CounterRole
from tessera.roles.glue import ActionRouter
from tessera.roles.kiosk import KioskRole

log = logging.getLogger(__name__)

# (device, state part, data) triples a role reports for its retained ``state/*``
State = Iterable[tuple[str, str, dict[str, Any]]]
StateSource = Callable[[], State]


def db_path(cfg: BranchConfig, device: str) -> Path:
    """The store of ``device`` (``tessera.identity.device_id``): ``<storage.dir>/<device>.db``."""
    return cfg.path(cfg.storage.dir) / f"{device}.db"


@dataclass
class Branch:
    """Everything one process runs, and how to stop it."""

    cfg: BranchConfig
    clock: Clock
    bus: Bus
    router: ActionRouter
    engine: Any = None
    owns_engine: bool = False  # the engine runs in this process (ticked here); else remote
    upkeep: Any = None  # tessera.engine.upkeep.StoreUpkeep of an engine run here
    kiosk: KioskRole | None = None
    counters: dict[str, CounterRole] = field(default_factory=dict)
    display: Any = None
    alert_lamp: Any = None  # tessera.roles.alerts.AlertLamp (alerts.lamp), with the display
    web: Any = None  # tessera.web.role.WebRole
    factories: dict[str, Any] = field(default_factory=dict)
    inputs: list[Any] = field(default_factory=list)
    uplink: Any = None
    links: dict[str, Any] = field(default_factory=dict)  # MQTT device links by device id
    published: Callable[[], int] | None = None  # with an uplink: drain, then acked count
    emitters: dict[str, Callable[[str, dict[str, Any]], None]] = field(default_factory=dict)
    state_sources: list[StateSource] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def tick(self) -> None:
        if self.owns_engine:
            self.engine.tick()
        if self.upkeep is not None:
            self.upkeep.maybe_run()
        if self.kiosk is not None:
            self.kiosk.refresh()
        for role in self.counters.values():
            role.tick()
        if self.alert_lamp is not None:
            self.alert_lamp.tick()
        self.publish_state()

    def publish_state(self) -> None:
        """Hand every role's current ``state/*`` to its device's link (retained, sent on
        change and again on every connect; a device without a link keeps nothing)."""
        if not self.links:
            return
        for source in self.state_sources:
            try:
                parts = list(source())
            except Exception as e:  # a state report must never stop the branch's tick
                log.warning("state report failed: %s", e)
                continue
            for device, part, data in parts:
                link = self.links.get(device)
                if link is not None:
                    link.presence.set_state(part, data)

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:
                log.exception("closing %r", close)
        self.closers.clear()


__all__ = ["Branch", "State", "StateSource", "db_path"]
