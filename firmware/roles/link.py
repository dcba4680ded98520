"""The roles' MQTT side: the engine's uplink and command server, and for a role on
its own Pi, the remote engine and the engine's event feed.

    >>> published = start_engine_link(branch)    # all-in-one or `run engine`
    >>> engine = remote_engine(branch, "counter-main")   # `run counter`

In the all-in-one shape the link only drains the outbox (and answers commands
from remote panels); nothing a customer or teller does waits for it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tessera.config import BranchConfig
from tessera.roles.remote import RemoteEngine

if TYPE_CHECKING:
    from tessera.wiring import Branch

log = logging.getLogger(__name__)


def role_device(cfg: BranchConfig, roles: set[str], device: str | None) -> str:
    """The MQTT device name of a standalone role process (``[a-z0-9-]``)."""
    if "kiosk" in roles:
        return f"kiosk-{device or cfg.kiosk.device}"
    if "counter" in roles:
        return f"counter-{device or 'main'}"
    return "display"


def _require_url(cfg: BranchConfig) -> None:
    if not cfg.mqtt.url:
        from tessera.errors import ConfigError

        raise ConfigError(["mqtt.url: a role without the engine talks to it over MQTT; "
                           "set mqtt.url (e.g. mqtt://engine.branch.lan:1883)"])


def start_engine_link(branch: Branch) -> Callable[[], int]:
    """Drain the engine's outbox to the broker and serve commands, on the link's thread.

    Returns (and stores as ``branch.published``) a function that waits, bounded,
    for the backlog to empty and gives the number of events the broker acknowledged.
    """
    from tessera.mqtt.commands import CommandServer
    from tessera.mqtt.link import DeviceLink
    from tessera.outbox import connect
    from tessera.wiring import db_path

    cfg = branch.cfg
    device = cfg.mqtt.device or "engine"
    path = db_path(cfg, device)
    dl = DeviceLink.from_config(cfg, device, clock=branch.clock, db_path=path)
    conn = connect(path)
    server = CommandServer(branch.engine, dl.port, dl.topics, conn, clock=branch.clock)
    dl.uplink.add_handler(dl.topics.command_filter, server.handle)
    dl.start()
    branch.uplink = dl
    branch.links[device] = dl
    branch.bus.subscribe(lambda _env: dl.uplink.notify())
    branch.closers.append(conn.close)
    branch.closers.append(dl.stop)

    def published(timeout_s: float = 30.0) -> int:
        deadline = time.monotonic() + timeout_s
        dl.uplink.notify()
        while dl.drainer.outbox.pending_count() and time.monotonic() < deadline:
            time.sleep(0.05)
            dl.uplink.notify()
        return int(dl.drainer.acked_total)

    branch.published = published
    return published


def drain_emitters(branch: Branch) -> None:
    """Give every device outbox of this process (kiosk, panels, display) its own link."""
    from tessera.mqtt.link import DeviceLink

    for device in branch.emitters:
        if device in branch.links:
            continue
        dl = DeviceLink.from_config(branch.cfg, device, clock=branch.clock)
        dl.start()
        branch.links[device] = dl
        branch.closers.append(dl.stop)
        branch.bus.subscribe(_notifier(dl, device))


def _notifier(dl: Any, device: str) -> Callable[[dict[str, Any]], None]:
    def notify(env: dict[str, Any]) -> None:
        if env.get("device") == device:
            dl.uplink.notify()
    return notify


def remote_engine(branch: Branch, device: str) -> RemoteEngine:
    """Connect this role's device to the broker; engine commands and events go through it."""
    from tessera.mqtt.command_client import CommandClient
    from tessera.mqtt.link import DeviceLink

    cfg = branch.cfg
    _require_url(cfg)
    dl = DeviceLink.from_config(cfg, device, clock=branch.clock)
    client = CommandClient(dl.port, dl.uplink, dl.topics, clock=branch.clock)
    engine_events = f"{dl.topics.of(cfg.mqtt.device or 'engine')}/evt/#"

    def on_event(msg: Any) -> None:
        try:
            env = json.loads(msg.payload)
        except ValueError:
            log.warning("ignoring a malformed event on %s", msg.topic)
            return
        if isinstance(env, dict):
            branch.bus.publish(env)

    dl.uplink.add_handler(engine_events, on_event)
    dl.start()
    branch.uplink = dl
    branch.links[device] = dl
    branch.bus.subscribe(_notifier(dl, device))  # our own device events
    branch.closers.append(dl.stop)
    return RemoteEngine(client)
