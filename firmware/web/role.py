"""The web role: one uvicorn server on its own thread, fed by the branch's events.

    role = WebRole(cfg, engine, clock, emit=device_emitter(branch, "web-main"))
    role.start(); branch.bus.subscribe(role.on_event)
    role.url            # -> 'http://127.0.0.1:8080'
    role.stop()

Every bus event (in-process, or the engine's ``evt/#`` from MQTT on its own Pi)
kicks one refresh: the engine's snapshot and the places of the tickets whose
pages are open are read on a worker thread (coalesced: a burst of events is one
read), turned into the pages' views (``tessera.web.views``) and pushed through
the hub. An engine that does not answer leaves the last views in place and the
heartbeat says ``"engine": "unreachable"``: the pages show it as stale, and the
display shows "connecting" until a first state arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import uvicorn

from tessera.clock import Clock
from tessera.config import BranchConfig
from tessera.engine import errors as E
from tessera.engine.errors import DomainError
from tessera.engine.models import BookingLoad, TicketPlace
from tessera.engine.ports import EventLog, WebEngine
from tessera.web.accounts import Accounts, Session
from tessera.web.app import build_app, json_text
from tessera.web.hub import Hub
from tessera.web.links import LinkSigner
from tessera.web.views import console_view, decode_snapshot, hall_view, ticket_view

log = logging.getLogger(__name__)
Emit = Callable[[str, dict[str, Any]], None]
ALERT_EVENTS = ("feedback.alert", "device.fault", "device.recovered", "printer.fault",
                "printer.recovered")
MAX_ALERTS = 20
KPI_EVERY_S = 10.0
PRESENCE_GRACE_S = 10.0  # a device with no status this long after the first one: offline
MAX_KNOWN = 20_000  # ticket ids known to exist (pages opened), kept to skip a lookup
KPI_BATCH, KPI_BATCHES = 2000, 200  # bounded catch-up of the event log
ID_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


class WebRole:
    """Hall display, mobile tickets and the supervisor console of one branch."""

    def __init__(self, cfg: BranchConfig, engine: WebEngine, clock: Clock, *,
                 emit: Emit | None = None, port: int | None = None) -> None:
        self.cfg = cfg
        self.engine = engine
        self.clock = clock
        self.emit = emit
        self.port = cfg.web.port if port is None else port
        self.heartbeat_s = cfg.web.heartbeat_s  # a tick on every quiet stream this often
        self.stale_s = cfg.web.stale_s  # the pages call data older than this stale
        self.hub = Hub(cfg.web.ring)
        self.accounts = Accounts.from_config(cfg.web)
        self.signer = LinkSigner.for_config(cfg)
        self.engine_ok: bool | None = None  # None: not asked yet
        self.last_ok_ts: float | None = None
        self.alerts: deque[dict[str, object]] = deque(maxlen=MAX_ALERTS)
        # the devices' presence (web role on its own Pi: their retained {device}/status,
        # as device.status on the bus); not followed until one arrives (in one process
        # every device of the branch is this process: none arrives)
        self.presence: dict[str, tuple[str, float]] = {}
        self._presence_since: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kicked: asyncio.Event | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._known: dict[str, bool] = {}
        self._audio_dir = cfg.path(cfg.storage.dir) / "web-audio"
        self._clips: Any = None  # tessera.display.voice.ClipLibrary, made on first use
        # /join: tickets from the phone (web.join), rate-limited per client and branch-wide
        from tessera.mqtt.command_auth import TokenBucket

        self.join_enabled = cfg.web.join
        self.join_per_hour, self.join_per_min = cfg.web.join_per_hour, cfg.web.join_per_min
        self._join_branch = TokenBucket(self.join_per_min / 60, float(self.join_per_min))
        self._join_clients: dict[str, TokenBucket] = {}
        self._bucket = TokenBucket
        # today's KPIs (tessera.engine.report), from the engine's event log when it runs
        # in this process; refreshed at most every KPI_EVERY_S while a console is open
        self._day_events: list[dict[str, Any]] = []
        self._day_seq = 0
        self._kpis: dict[str, object] | None = None
        self._kpi_at = -1e9

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        host = self.cfg.web.bind
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        """Serve on ``web.bind``:``web.port`` (port 0: any free one, then ``self.port``)."""
        config = uvicorn.Config(build_app(self), host=self.cfg.web.bind, port=self.port,
                                log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2, ws="none")
        self._server = uvicorn.Server(config)
        failed: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(self._serve())
            except BaseException as e:  # bind failure: reported to start()
                failed.append(e)

        self._thread = threading.Thread(target=serve, name="web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started and self._thread.is_alive() \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            self.stop()
            from tessera.errors import DeviceError

            why = f": {failed[0]}" if failed else " (the server exited)"
            raise DeviceError(f"web: cannot serve on {self.cfg.web.bind}:{self.port}{why}; "
                              "check web.bind and web.port")
        sockets = [s for srv in self._server.servers for s in srv.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def _serve(self) -> None:
        assert self._server is not None
        self._loop = asyncio.get_running_loop()
        self._kicked = asyncio.Event()
        refresher = asyncio.create_task(self._refresher())
        try:
            await self._server.serve()
        finally:
            refresher.cancel()

    def stop(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self.hub.drop_all)
            except RuntimeError:
                pass
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    def drop_connections(self) -> None:
        """End every open stream (the pages reconnect and resume): a network drop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.hub.drop_all)

    # ------------------------------------------------------------------ feeding

    def now(self) -> float:
        return self.clock.now().timestamp()

    def on_event(self, env: dict[str, Any]) -> None:
        """A bus subscriber (any thread): note alerts and schedule a refresh."""
        type_ = str(env.get("type", ""))
        if type_ == "device.status":
            data = env.get("data")
            state = data.get("state") if isinstance(data, dict) else None
            if isinstance(state, str):
                now = time.monotonic()
                if self._presence_since is None:
                    self._presence_since = now
                self.presence[str(env.get("device", ""))] = (state, now)
        elif type_ in ALERT_EVENTS:
            data = env.get("data") if isinstance(env.get("data"), dict) else {}
            assert isinstance(data, dict)
            self.alerts.appendleft({"kind": type_, "device": str(env.get("device", "")),
                                    "ts": str(env.get("ts", "")),
                                    "detail": json_text({k: data[k] for k in sorted(data)
                                                         if k != "ticket_id"})})
        self.kick()

    def kick(self) -> None:
        loop, ev = self._loop, self._kicked
        if loop is not None and ev is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # the loop just closed
                pass

    async def _refresher(self) -> None:
        assert self._kicked is not None
        while True:
            try:
                await asyncio.wait_for(self._kicked.wait(), self.heartbeat_s)
            except TimeoutError:
                pass  # estimates and times in service move with the clock: refresh anyway
            self._kicked.clear()
            try:
                await self._refresh()
            except Exception:
                log.exception("web: refresh failed")

    def _read(self, tickets: list[str]) -> tuple[Any, dict[str, TicketPlace]] | None:
        try:
            snap = decode_snapshot(self.engine.snapshot())
            places = self.engine.ticket_places(tickets) if tickets else {}
        except Exception as e:  # unreachable or a malformed answer: keep the last views
            if self.engine_ok is not False:
                log.warning("web: the engine does not answer (%s); pages show stale data", e)
            self.engine_ok = False
            return None
        self.engine_ok = True
        self.last_ok_ts = self.now()
        if "manage" in self.hub.topics():
            self._update_kpis(snap.business_day)
        return snap, places

    def _update_kpis(self, day: str) -> None:
        """Today's KPIs from the engine's own events (the same report as `tessera report`)."""
        if not isinstance(self.engine, EventLog):
            self._kpis = {"available": False, "detail": "KPIs are computed where the engine "
                          "runs: tessera report --config FILE on the engine's Pi"}
            return
        if time.monotonic() - self._kpi_at < KPI_EVERY_S:
            return
        from tessera.engine.report import day_report

        self._kpi_at = time.monotonic()
        try:
            for _ in range(KPI_BATCHES):
                batch = self.engine.events_since(self._day_seq, KPI_BATCH)
                if not batch:
                    break
                self._day_seq = int(batch[-1]["seq"])
                self._day_events.extend(batch)
            # keep the current day's events only (with the roll that starts it)
            rolls = [i for i, e in enumerate(self._day_events) if e.get("type") == "day.rolled"]
            if rolls:
                self._day_events = self._day_events[rolls[-1]:]
            report = day_report(self._day_events, self.cfg, day)
        except Exception as e:  # a report must never stop the pages
            log.warning("web: today's KPIs failed: %s", e)
            return
        services = report["services"]
        self._kpis = {"available": True, "issued": report["issued"],
                      "wait_mean_s": report["wait"]["mean_s"],
                      "wait_p90_s": report["wait"]["p90_s"],
                      "no_shows": sum(report["no_shows"].values()),
                      "services": [{"id": s.id, "issued": services[s.id]["issued"],
                                    "sla_pct": services[s.id]["sla_pct"],
                                    "sla_target_pct": services[s.id]["sla_target_pct"],
                                    "rating_mean": services[s.id]["ratings"]["mean"],
                                    "ratings": services[s.id]["ratings"]["n"]}
                                   for s in self.cfg.services if s.id in services]}

    async def _refresh(self) -> None:
        tickets = [t.split(":", 1)[1] for t in self.hub.topics() if t.startswith("ticket:")]
        got = await asyncio.to_thread(self._read, tickets)
        if got is None:
            return
        snap, places = got
        self._publish("display", "state", hall_view(self.cfg, snap))
        if "manage" in self.hub.topics() or "manage" not in self.hub.latest:
            view = console_view(self.cfg, snap, [*self.offline_alerts(), *self.alerts],
                                self.now())
            view["kpis"] = self._kpis or {"available": False, "detail": "computing…"}
            self._publish("manage", "state", view)
        for tid, place in places.items():
            self._publish(f"ticket:{tid}", "place", ticket_view(self.cfg, place,
                                                                snap.business_day))

    def _publish(self, topic: str, event: str, view: dict[str, object]) -> None:
        data = json_text(view)
        latest = self.hub.latest.get(topic)
        if latest is None or latest.data != data:
            self.hub.publish(topic, event, data)

    def offline_alerts(self, now: float | None = None) -> list[dict[str, object]]:
        """``offline`` alerts: each device of the branch (``tessera.identity``; not the
        occasional monitor or supervisor logins) whose last status is not ``online``,
        whose ``online`` was not refreshed within ``mqtt.status_expiry_s``, or with no
        status ``PRESENCE_GRACE_S`` after the first one arrived. Empty when presence is
        not followed (the web role in the engine's process)."""
        from tessera.identity import branch_devices

        since = self._presence_since
        if since is None:
            return []
        now = time.monotonic() if now is None else now
        expiry = self.cfg.mqtt.status_expiry_s
        out: list[dict[str, object]] = []
        for d in sorted(branch_devices(self.cfg).values(), key=lambda d: d.id):
            if d.role in ("monitor", "supervisor"):
                continue
            got = self.presence.get(d.id)
            if got is None:
                if now - since >= PRESENCE_GRACE_S:
                    out.append({"kind": "offline", "device": d.id,
                                "detail": f"{d.role}: no status on the broker"})
            elif got[0] != "online":
                out.append({"kind": "offline", "device": d.id,
                            "detail": f"{d.role}: {got[0]}"})
            elif now - got[1] > expiry:
                out.append({"kind": "offline", "device": d.id,
                            "detail": f"{d.role}: no presence refresh for {now - got[1]:.0f} s"})
        return out

    def tick_json(self) -> str:
        return json_text({"ts": self.now(), "engine": {None: "connecting", True: "ok",
                                                       False: "unreachable"}[self.engine_ok],
                          "last_ok": self.last_ok_ts})

    # ------------------------------------------------------------------ requests

    async def known_ticket(self, ticket_id: str) -> bool:
        if ticket_id in self._known:
            return True
        try:
            got = await asyncio.to_thread(self.engine.ticket_places, [ticket_id])
        except Exception:
            return False
        if ticket_id in got:
            if len(self._known) > MAX_KNOWN:  # bounded: a forgotten id is looked up again
                self._known.clear()
            self._known[ticket_id] = True
            if f"ticket:{ticket_id}" not in self.hub.latest:
                place = got[ticket_id]
                self._publish(f"ticket:{ticket_id}", "place",
                              ticket_view(self.cfg, place, self._today(place)))
            return True
        return False

    def _today(self, place: TicketPlace) -> str:
        latest = self.hub.latest.get("display")
        if self.engine_ok is None or latest is None:
            return place.ticket.business_day
        return str(json.loads(latest.data).get("business_day", place.ticket.business_day))

    async def rate(self, ticket_id: str, score: int) -> tuple[int, dict[str, object]]:
        try:
            r = await asyncio.to_thread(self.engine.rate_ticket, ticket_id, score,
                                        channel="web")
        except DomainError as e:
            return 409, {"status": "rejected", "code": e.code, "detail": str(e)}
        except Exception as e:
            return 503, {"status": "error", "code": "unreachable", "detail": str(e)}
        self.kick()
        return 200, {"status": "done", "code": "ok", "score": r.score}

    def join_admit(self, client: str) -> bool:
        """Whether a phone at ``client`` may take a ticket now (both limits)."""
        now = time.monotonic()
        bucket = self._join_clients.get(client)
        if bucket is None:
            if len(self._join_clients) > 10_000:  # bounded: forget the oldest clients
                for k in list(self._join_clients)[:5_000]:
                    del self._join_clients[k]
            bucket = self._join_clients.setdefault(client, self._bucket(
                self.join_per_hour / 3600, float(self.join_per_hour)))
        if not bucket.take(now):
            return False
        if not self._join_branch.take(now):
            bucket.tokens += 1.0  # refused for the branch's limit: not this client's fault
            return False
        return True

    async def join(self, service: str) -> tuple[int, dict[str, object]]:
        """A ticket taken on the phone: issued with channel ``remote`` and confirmed at once
        (the page is the ticket: nothing to print)."""
        e = self.engine

        def take() -> str:
            t = e.issue(service, channel="remote")
            return e.confirm_printed(t.id).id

        try:
            tid = await asyncio.to_thread(take)
        except DomainError as err:
            return 409, {"status": "rejected", "code": err.code, "detail": str(err)}
        except Exception as err:
            return 503, {"status": "error", "code": "unreachable", "detail": str(err)}
        self.kick()
        return 303, {"status": "done", "code": "ok", "location": f"/t/{self.signer.ref(tid)}"}

    async def login(self, name: str, password: str, client: str) -> Session | None:
        return await asyncio.to_thread(self.accounts.login, name, password, client, self.now())

    async def act(self, account: str, role: str, action: str,
                  args: dict[str, str]) -> tuple[int, dict[str, object]]:
        """Run a console action on the engine; every outcome is a ``console.action``
        event naming the account."""
        e = self.engine
        calls: dict[str, Callable[[], object]] = {
            "open": lambda: e.open_counter(args["counter"], args.get("staff") or None),
            "close": lambda: e.close_counter(args["counter"]),
            "pause": lambda: e.pause(args["counter"]),
            "resume": lambda: e.resume(args["counter"]),
            "call": lambda: e.call_specific(args["counter"], args["number"]),
            "transfer": lambda: e.transfer(args["counter"], args["service"]),
            "void": lambda: e.void(args["ticket_id"], f"voided by {account} (console)"),
            # printed at the kiosk when its ticket.reprinted event arrives (as a counter's)
            "reprint": lambda: e.reprint(self._reprint_id(args["ticket"])),
            "undo-no-show": lambda: e.undo_no_show(args["ticket"].strip(),
                                                   counter=args["counter"]),
        }
        try:
            await asyncio.to_thread(calls[action])
        except DomainError as err:
            self.audit(account, role, action, args, "rejected", err.code)
            return 409, {"status": "rejected", "code": err.code, "detail": str(err)}
        except Exception as err:
            self.audit(account, role, action, args, "error", "unreachable")
            return 503, {"status": "error", "code": "unreachable", "detail": str(err)}
        self.audit(account, role, action, args, "done", "ok")
        self.kick()
        return 200, {"status": "done", "code": "ok"}

    def _reprint_id(self, ticket: str) -> str:
        """The id of the ticket to reprint: ``ticket`` itself, or the ticket of today's
        number ``ticket`` at a counter or among the recent calls (a waiting ticket is
        reprinted by its id: the snapshot lists no waiting tickets)."""
        text = ticket.strip()
        if ID_RE.match(text):
            return text
        number = text.upper()
        snap = decode_snapshot(self.engine.snapshot())
        for c in snap.counters.values():
            if c.current is not None and c.current.number == number:
                return c.current.ticket_id
        for call in snap.recent_calls:
            if call.number == number:
                return call.ticket_id
        raise E.UnknownTicket(f"Ticket {number} is at no counter and not among the recent "
                              "calls; give its ticket id to reprint it. Nothing was "
                              "reprinted.")

    async def load_appointments(self, account: str, role: str, form: dict[str, str]
                                ) -> tuple[int, dict[str, object]]:
        """The console's bookings upload: checked line by line as `tessera appointments
        load` checks a file (every bad line shown, nothing sent), then sent as that
        command sends it: batches within ``mqtt.command_max_bytes``, each dry-run first,
        then, if none was refused, applied (idempotent by code)."""
        from tessera.commands.appointments_cmd import split_batches
        from tessera.engine.appointments import bookings_from_text
        from tessera.errors import ConfigError
        from tessera.web.app import audit_args

        source, dry_run = form["file"], form.get("dry_run") == "1"
        args = audit_args("appointments", form)
        try:
            bookings = bookings_from_text(source, form["csv"], self.cfg)
        except ConfigError as err:
            self.audit(account, role, "appointments", args, "rejected", "bad-bookings")
            return 422, {"status": "rejected", "code": "bad-bookings",
                         "detail": f"{len(err.errors)} bad line(s); nothing was loaded",
                         "errors": list(err.errors)}
        batches = split_batches(source, bookings, self.cfg.mqtt.command_max_bytes) \
            if bookings else []
        e = self.engine

        def send(batch: dict[str, Any], dry: bool) -> BookingLoad:
            return e.load_booking_lines(source, [(x["line"], x["code"], x["service"],
                                                  x["slot"]) for x in batch["lines"]],
                                        dry_run=dry)

        def run() -> tuple[list[BookingLoad], int]:
            checked = [send(b, True) for b in batches]
            if dry_run:
                return checked, len(batches)
            done: list[BookingLoad] = []
            for b in batches:
                try:
                    done.append(send(b, False))
                except DomainError as err:
                    err.add_note(f"{len(done)} of {len(batches)} batches were loaded before "
                                 "the engine refused one; upload the file again: loading is "
                                 "idempotent")
                    raise
            return done, len(batches)

        try:
            loads, n = await asyncio.to_thread(run)
        except DomainError as err:
            self.audit(account, role, "appointments", args, "rejected", err.code)
            errors = list(getattr(err, "errors", ())) or \
                str(err).removesuffix("; nothing was loaded").split("; ")
            notes = getattr(err, "__notes__", [])
            return 409, {"status": "rejected", "code": err.code,
                         "detail": " ".join([*notes] or ["nothing was loaded"]),
                         "errors": errors}
        except Exception as err:
            self.audit(account, role, "appointments", args, "error", "unreachable")
            return 503, {"status": "error", "code": "unreachable", "detail": str(err)}
        result = {k: sum(getattr(x, k) for x in loads)
                  for k in ("added", "moved", "unchanged", "past")}
        self.audit(account, role, "appointments", args, "done", "ok")
        self.kick()
        verb = "would add" if dry_run else "added"
        return 200, {"status": "done", "code": "ok", "result": result, "batches": n,
                     "dry_run": dry_run,
                     "detail": f"{source}: {verb} {result['added']}, moved {result['moved']}, "
                     f"{result['unchanged']} unchanged, {result['past']} past their check-in "
                     f"window ({n} batches)" if bookings else
                     f"{source}: no bookings in the file; nothing to do"}

    def audit(self, account: str, role: str, action: str, args: dict[str, str],
              outcome: str, code: str) -> None:
        """The ``console.action`` event: who did what, with which outcome."""
        if self.emit is None:
            return
        try:
            self.emit("console.action", {"account": account, "role": role, "action": action,
                                         "args": dict(args), "outcome": outcome,
                                         "code": code})
        except Exception:
            log.exception("web: recording a console action failed")

    async def audio(self, name: str) -> bytes | None:
        return await asyncio.to_thread(self._audio, name)

    def _audio(self, name: str) -> bytes | None:
        """``chime.wav``, or ``call-<NUMBER>-<COUNTER>.wav`` assembled from the caller
        board's clips (in memory: nothing accumulates on the SD card)."""
        import re

        from tessera.display.voice import (
            ClipLibrary,
            VoiceError,
            generated_clips_dir,
            write_chime,
        )

        cfg = self.cfg
        root = cfg.path(cfg.voice.clips_dir) if cfg.voice.clips_dir else \
            generated_clips_dir(cfg.path(cfg.storage.dir))
        langs = [lg for lg in (cfg.voice.languages or cfg.branch.languages)]
        self._audio_dir.mkdir(parents=True, exist_ok=True)
        if name == "chime.wav":
            clip = root / langs[0] / "chime.wav" if langs else None
            if clip is not None and clip.is_file():
                return clip.read_bytes()
            out = self._audio_dir / "chime.wav"
            return (out if out.is_file() else write_chime(out)).read_bytes()
        m = re.fullmatch(r"call-([A-Z]{1,2}[0-9]{1,9})-([0-9]{1,3})\.wav", name)
        if m is None:
            return None
        lib = self._clips if self._clips is not None and self._clips.root == root \
            else ClipLibrary(root)
        self._clips = lib  # its clips stay cached in memory (a few hundred KiB)
        paths = lib.announcement_clips(m[1], int(m[2]), langs, chime=cfg.voice.chime)
        if not all(p.is_file() for p in paths):
            return None
        out = self._audio_dir / f"call.{threading.get_ident()}.wav"
        try:
            return lib.assemble(paths, out).read_bytes()
        except (VoiceError, OSError):
            return None
        finally:
            out.unlink(missing_ok=True)
