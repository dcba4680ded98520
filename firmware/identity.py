"""The one answer to "which MQTT device is role R on Pi D".

Everything that names a device on the wire uses :func:`device_id`: topics,
outbox files (``<storage.dir>/<device>.db``), MQTT client ids, response
topics, credentials files, ACL users and the broker's device list.

    device_id(cfg, "kiosk", "main")
    # -> 'kiosk-main'
    device_id(cfg, "engine")          # the engine is mqtt.device ("engine")
    # -> 'engine'
    sorted(branch_devices(cfg))
    # -> ['counter-main', 'counter-pi-a', 'display-main', 'engine', 'kiosk-main']

Each role process of a Pi is its own device (its own outbox, connection and
login), so a kiosk and a counter panel on one Pi are ``kiosk-main`` and
``counter-main``; the names never depend on which roles share a process.
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.config import BranchConfig

ROLES = ("engine", "kiosk", "counter", "display", "monitor", "supervisor", "web")
# what one `tessera run ROLE` process can be ("all": every role but the monitor; the web
# role only with web.enabled)
RUN_ROLES = ("all", "kiosk", "counter", "display", "engine", "web")


@dataclass(frozen=True)
class Device:
    """One MQTT identity of the branch: its id, its role and the Pi it runs on."""

    id: str
    role: str
    pi: str


def device_id(cfg: BranchConfig, role: str, pi: str | None = None) -> str:
    """The MQTT device id of ``role`` on Pi ``pi`` (the engine's is ``mqtt.device``)."""
    if role == "engine":
        return cfg.mqtt.device
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
    return f"{role}-{pi or default_pi(cfg, role)}"


def default_pi(cfg: BranchConfig, role: str) -> str:
    """The Pi a role runs on when the command line does not say."""
    if role == "kiosk":
        return cfg.kiosk.device
    if role == "display":
        return cfg.board.device
    if role == "web":
        return cfg.web.device
    if role == "counter":
        pis = counter_pis(cfg)
        return pis[0] if len(pis) == 1 else "main"
    return "main"


def counter_pis(cfg: BranchConfig) -> list[str]:
    """The Pis that have counter panels wired, in config order."""
    return list(dict.fromkeys(c.device for c in cfg.counters if c.panel is not None))


def branch_devices(cfg: BranchConfig) -> dict[str, Device]:
    """Every device of the branch, by id.

    Derived from the config: the engine, the kiosk's Pi, each Pi with counter
    panels, and the display's Pi when a board or voice is configured; plus what
    ``mqtt.devices`` (``{pi = [roles]}``) adds, e.g. a read-only ``monitor``
    login for a dashboard or another display Pi.
    """
    pairs: list[tuple[str, str]] = [("engine", cfg.mqtt.device)]
    if cfg.kiosk.buttons:
        pairs.append(("kiosk", cfg.kiosk.device))
    pairs += [("counter", pi) for pi in counter_pis(cfg)]
    if cfg.board.url or cfg.voice.enabled:
        pairs.append(("display", cfg.board.device))
    if cfg.web.enabled:
        pairs.append(("web", cfg.web.device))
    for pi, roles in cfg.mqtt.devices.items():
        pairs += [(r, pi) for r in roles]
    out: dict[str, Device] = {}
    for role, pi in pairs:
        d = Device(device_id(cfg, role, pi), role, pi)
        out.setdefault(d.id, d)
    return out


__all__ = ["ROLES", "RUN_ROLES", "Device", "branch_devices", "counter_pis", "default_pi",
           "device_id"]
