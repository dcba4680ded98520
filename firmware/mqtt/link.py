"""Assemble one device's MQTT link from the branch config (or from parts in tests).

    link = DeviceLink.build(settings, outbox=Outbox.open(db, tenant="acme",
        branch="b1", device="kiosk-1"), clock=SystemClock(), meta={"role": ["kiosk"]})
    link.start(); link.presence.set_state("printer", {"paper": "ok"})
    link.stop()

``settings_from_config(cfg, device)`` turns ``[mqtt]`` into ``MqttSettings``
(URL, TLS CA, the device's credentials file, session expiry, backoff).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tessera.clock import Clock
from tessera.config import BranchConfig
from tessera.drivers.mqtt_client import MqttPort, MqttSettings, PahoClient
from tessera.errors import ConfigError
from tessera.mqtt.credentials import load_credentials
from tessera.mqtt.drainer import Drainer
from tessera.mqtt.presence import STATUS_EXPIRY_S, Presence
from tessera.mqtt.retention import Retention
from tessera.mqtt.topics import Topics
from tessera.outbox import Outbox, connect

log = logging.getLogger(__name__)


def credentials_path(cfg: BranchConfig, device: str) -> Path | None:
    """The login of ``device``: ``mqtt.credentials_dir/<device>.toml``, else the one
    ``mqtt.credentials_file`` (a process with one device, or a shared login at HQ)."""
    m = cfg.mqtt
    if m.credentials_dir:
        return cfg.path(m.credentials_dir) / f"{device}.toml"
    if m.credentials_file:
        return cfg.path(m.credentials_file)
    return None


def settings_from_config(cfg: BranchConfig, device: str, *, client_id: str | None = None
                         ) -> MqttSettings:
    """The MQTT settings of ``device``. With the generated broker config the broker
    uses the login as client id (``use_username_as_clientid``); ours is for other
    brokers and is unique in a fleet."""
    m = cfg.mqtt
    u = urlsplit(m.url)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise ConfigError([f"mqtt.url: {m.url!r} must look like mqtt://host:1883 or "
                           "mqtts://host:8883"])
    tls = u.scheme == "mqtts"
    user = pw = None
    creds = credentials_path(cfg, device)
    if creds is not None:
        user, pw = load_credentials(creds)
    return MqttSettings(
        host=u.hostname, port=u.port or (8883 if tls else 1883),
        client_id=client_id or f"{cfg.branch.tenant}-{cfg.branch.branch}-{device}",
        username=user, password=pw,
        ca_file=str(cfg.path(m.ca_file)) if m.ca_file else None, tls=tls,
        keepalive_s=m.keepalive_s, session_expiry_s=m.session_expiry_s,
        connect_timeout_s=m.connect_timeout_s, backoff_min_s=m.reconnect_min_s,
        backoff_max_s=m.reconnect_max_s, max_inflight=m.inflight + 20,
        **(engine_command_settings(cfg) if device == m.device else {}),
    )


# Unacked requests the broker may have in flight to the engine (MQTT 5 Receive
# Maximum): the engine's inbound queue. More wait in its session queue at the broker.
COMMAND_RECEIVE_MAX = 64


def engine_command_settings(cfg: BranchConfig) -> dict[str, Any]:
    """The engine's client acks a request only after its answer is stored, bounds the
    requests in flight to it, and sees (and refuses) retained requests."""
    topics = Topics(cfg.branch.tenant, cfg.branch.branch, cfg.mqtt.device,
                    engine=cfg.mqtt.device)
    return {"manual_ack": True, "receive_maximum": COMMAND_RECEIVE_MAX,
            "request_filters": (topics.request_filter,)}


@dataclass
class DeviceLink:
    """Port + uplink loop + drainer + presence of one device."""

    port: MqttPort
    uplink: Any  # tessera.mqtt.uplink.Uplink (kept Any to avoid an import cycle in typing)
    drainer: Drainer
    presence: Presence
    topics: Topics
    server: Any = None  # the engine's CommandServer (for_engine only)
    closers: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: MqttSettings, *, outbox: Outbox, clock: Clock,
              meta: dict[str, Any] | None = None, inflight: int = 100,
              budget_bytes: int = 256 << 20, port: MqttPort | None = None,
              engine_device: str = "engine", keep_s: float = 7 * 86400,
              keep_rows: int = 200_000,
              status_expiry_s: int = STATUS_EXPIRY_S) -> DeviceLink:
        from tessera.mqtt.uplink import Uplink

        topics = Topics(outbox.tenant, outbox.branch, outbox.device, engine=engine_device)
        db = outbox.conn.execute("PRAGMA database_list").fetchone()[2]
        presence = Presence(topics, connect(db) if db else outbox.conn, clock=clock, meta=meta,
                            status_expiry_s=status_expiry_s)
        if port is None:
            port = PahoClient(dataclasses.replace(settings, will=presence.will,
                                                  max_inflight=max(settings.max_inflight,
                                                                   inflight + 20)))
        drainer = Drainer(port, outbox, topics, inflight=inflight)
        retention = Retention(outbox, budget_bytes=budget_bytes, clock=clock, keep_s=keep_s,
                              keep_rows=keep_rows, mark=lambda: drainer.local_mark)
        uplink = Uplink(port, drainer=drainer, presence=presence, retention=retention)
        # the broker's retained high-water mark, on every connect (tessera.mqtt.drainer)
        uplink.add_handler(drainer.mark_topic, drainer.on_mark)
        drainer.barrier = lambda: presence.sync_mid
        uplink.every(1.0, presence.tick)  # refreshes the expiring birth when due
        return cls(port, uplink, drainer, presence, topics)

    @classmethod
    def from_config(cls, cfg: BranchConfig, device: str, *, clock: Clock,
                    meta: dict[str, Any] | None = None, db_path: Path | None = None) -> DeviceLink:
        """The link of ``device``; its outbox is ``<storage.dir>/<device>.db`` unless given."""
        path = db_path or cfg.path(cfg.storage.dir) / f"{device}.db"
        if cfg.mqtt.redeliver_window_s is not None:
            log.warning("mqtt.redeliver_window_s is deprecated and ignored: the broker's "
                        "retained high-water mark (state/hwm) decides what is re-sent after "
                        "a drop (docs/mqtt.md); remove the option")
        outbox = Outbox.open(path, tenant=cfg.branch.tenant, branch=cfg.branch.branch,
                             device=device)
        return cls.build(settings_from_config(cfg, device), outbox=outbox, clock=clock,
                         meta=meta, inflight=cfg.mqtt.inflight,
                         budget_bytes=int(cfg.mqtt.outbox_budget_mb * (1 << 20)),
                         engine_device=cfg.mqtt.device, keep_s=cfg.mqtt.delivered_keep_s,
                         keep_rows=cfg.mqtt.delivered_keep_rows,
                         status_expiry_s=cfg.mqtt.status_expiry_s)

    @classmethod
    def for_engine(cls, cfg: BranchConfig, engine: Any, *, clock: Clock, db_path: Path,
                   meta: dict[str, Any] | None = None) -> DeviceLink:
        """The engine's link: drains its outbox, serves ``+/req/+``, wakes on commit.

        ``db_path`` is the engine's database (the drainer and the dedupe table
        use their own connections to it). Call ``start()`` / ``stop()``.
        """
        from tessera.mqtt.command_auth import CommandPolicy
        from tessera.mqtt.commands import PRUNE_EVERY_S, CommandServer

        link = cls.from_config(cfg, cfg.mqtt.device, clock=clock, db_path=db_path,
                               meta={"role": ["engine"], **(meta or {})})
        conn = connect(db_path)
        server = CommandServer(engine, link.port, link.topics, conn, clock=clock,
                               max_bytes=cfg.mqtt.command_max_bytes,
                               max_age_s=cfg.mqtt.command_max_age_s,
                               policy=CommandPolicy.from_config(cfg))
        link.uplink.add_handler(link.topics.request_filter, server.handle)
        link.uplink.every(PRUNE_EVERY_S, server.prune)
        link.server = server
        link.closers.append(conn.close)
        previous = getattr(engine, "on_commit", None)

        def on_commit(events: Any) -> None:
            if previous is not None:
                previous(events)
            link.uplink.notify()

        engine.on_commit = on_commit
        return link

    def start(self) -> None:
        self.uplink.start()

    def stop(self, timeout: float = 3.0) -> None:
        self.uplink.stop(timeout)
        for close in self.closers:
            close()
        self.closers.clear()
