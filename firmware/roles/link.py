"""The roles' MQTT side: the engine's uplink and command server, and for a role on
its own Pi, the remote engine and the engine's event feed.

    published = start_engine_link(branch)    # all-in-one or `run engine`
    engine = remote_engine(branch, "counter-main")   # `run counter`

In the all-in-one shape the link only drains the outbox (and answers commands
from remote panels); nothing a customer or teller does waits for it. Device
names come from ``tessera.identity.device_id``, the same function the broker
files are generated with.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from tessera.config import BranchConfig
from tessera.identity import branch_devices, device_id
from tessera.roles.branch import Branch, db_path
from tessera.roles.remote import RemoteEngine

log = logging.getLogger(__name__)


def role_device(cfg: BranchConfig, roles: set[str], device: str | None) -> str:
    """The MQTT device id of a standalone role process on Pi ``device``."""
    role = "kiosk" if "kiosk" in roles else "counter" if "counter" in roles else \
        "display" if "display" in roles else "web" if "web" in roles else "display"
    return device_id(cfg, role, device)


def _require_url(cfg: BranchConfig) -> None:
    if not cfg.mqtt.url:
        from tessera.errors import ConfigError

        raise ConfigError(["mqtt.url: a role without the engine talks to it over MQTT; "
                           "set mqtt.url (e.g. mqtt://engine.branch.lan:1883)"])


def _meta(cfg: BranchConfig, device: str) -> dict[str, Any]:
    d = branch_devices(cfg).get(device)
    role = d.role if d is not None else device.split("-", 1)[0]
    return {"role": [role]}


def start_engine_link(branch: Branch) -> Callable[[], int]:
    """Drain the engine's outbox to the broker and serve commands, on the link's thread.

    Returns (and stores as ``branch.published``) a function that waits, bounded,
    for the backlog to empty and gives the number of events the broker acknowledged.
    """
    from tessera.mqtt.link import DeviceLink

    cfg = branch.cfg
    device = device_id(cfg, "engine")
    dl = DeviceLink.for_engine(cfg, branch.engine, clock=branch.clock,
                               db_path=db_path(cfg, device))
    dl.start()
    branch.uplink = dl
    branch.links[device] = dl
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
        dl = DeviceLink.from_config(branch.cfg, device, clock=branch.clock,
                                    meta=_meta(branch.cfg, device))
        dl.start()
        branch.links[device] = dl
        branch.closers.append(dl.stop)
        branch.bus.subscribe(_notifier(dl, device))


def _notifier(dl: Any, device: str) -> Callable[[dict[str, Any]], None]:
    def notify(env: dict[str, Any]) -> None:
        if env.get("device") == device:
            dl.uplink.notify()
    return notify


def _presence_feed(branch: Branch) -> Callable[[Any], None]:
    """The web device on its own Pi: every device's retained ``{device}/status`` as a
    ``device.status`` envelope on this process's bus only (never an MQTT event; the web
    role's "devices offline" alert, docs/web.md)."""
    def on_status(msg: Any) -> None:
        parts = str(msg.topic).rsplit("/", 2)
        try:
            state = json.loads(msg.payload).get("state") if msg.payload else "gone"
        except (ValueError, AttributeError):
            return
        if len(parts) == 3 and isinstance(state, str):
            branch.bus.publish({"type": "device.status", "device": parts[1],
                                "data": {"state": state[:16]}})
    return on_status


def remote_engine(branch: Branch, device: str) -> RemoteEngine:
    """Connect this role's device to the broker; engine commands and events go through it."""
    from tessera.mqtt.command_client import CommandClient
    from tessera.mqtt.link import DeviceLink

    cfg = branch.cfg
    _require_url(cfg)
    dl = DeviceLink.from_config(cfg, device, clock=branch.clock, meta=_meta(cfg, device))
    # requests expire at the broker when the engine would refuse them as too old
    client = CommandClient(dl.port, dl.uplink, dl.topics, clock=branch.clock,
                           expiry_s=math.ceil(cfg.mqtt.command_max_age_s))
    engine_events = f"{dl.topics.of(device_id(cfg, 'engine'))}/evt/#"

    def on_event(msg: Any) -> None:
        try:
            env = json.loads(msg.payload)
        except ValueError:
            log.warning("ignoring a malformed event on %s", msg.topic)
            return
        if isinstance(env, dict):
            branch.bus.publish(env)

    dl.uplink.add_handler(engine_events, on_event)
    if device.startswith("display-"):
        # the counter panels' own counter.notice (transfer target, refusals) for their
        # signs; one from this very process is already on the bus
        def on_notice(msg: Any) -> None:
            try:
                env = json.loads(msg.payload)
            except ValueError:
                return
            if isinstance(env, dict) and env.get("device") not in branch.emitters:
                branch.bus.publish(env)

        dl.uplink.add_handler(f"{dl.topics.branch_root}/+/evt/counter.notice", on_notice)
    if device.startswith("web-"):
        dl.uplink.add_handler(f"{dl.topics.branch_root}/+/status", _presence_feed(branch))
    dl.start()
    branch.uplink = dl
    branch.links[device] = dl
    branch.bus.subscribe(_notifier(dl, device))  # our own device events
    branch.closers.append(dl.stop)
    # a kiosk keeps the confirms of printed tickets the engine has not answered yet
    pending = cfg.path(cfg.storage.dir) / f"{device}.pending-confirms.json" \
        if device.startswith("kiosk-") else None
    refusals = cfg.path(cfg.storage.dir) / f"{device}.pending-refusals.json" \
        if device.startswith("kiosk-") else None
    remote = RemoteEngine(client, pending=pending, pending_refusals=refusals)
    branch.closers.append(remote.close)
    remote.resume_pending()
    return remote
