"""Turn a real branch config into the demo's: emulated ports, output dir, fast buttons.

- hardware ports → the emulators' ptys; storage → the output directory;
  announcements → WAV files in ``<out>/wav``; the clock is trusted (virtual);
- counters without a panel get a simulated one, each on its own simulated Pi
  (``demo-<id>``), so every teller press still goes through GPIO;
- GPIO debounce and hold are shortened: mock pins do not bounce, and the
  simulated day must not wait 2 s of real time for every held key; the hold
  stays far above a tap's few ms, so a tap slowed by a busy machine is never
  taken for a hold (that would pause a counter and change the seeded day);
- the printer's status timeout is raised: the emulator always answers, and a
  status reply late on a loaded machine must not refuse a ticket.

    demo = demo_config(cfg, out=Path("out"), printer_url=p.path, board_url=b.path)
    start = opening_time(demo, date(2026, 3, 2))
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import msgspec

from tessera.config import BranchConfig, Counter, Panel, service_spans

SIM_PANEL: dict[str, int] = {"next": 5, "recall": 6, "transfer": 13, "no_show": 19, "done": 26,
                             "pause": 12}
SIM_RATINGS = (20, 21, 16, 17, 22)
SIM_RATING_LED = 23


def _sim_scale(cfg: BranchConfig, c: Counter) -> int:
    """The counter's rating scale as the simulated panel can wire it (3 to 5 buttons)."""
    return min(len(SIM_RATINGS), max(3, cfg.rating_scale(c.id)))


def _sim_panel(cfg: BranchConfig, c: Counter) -> Panel:
    served = [cs.service for cs in c.services]
    others = [s.id for s in cfg.services if s.id not in served[:1]][:3]
    p = SIM_PANEL
    return Panel(next=p["next"], recall=p["recall"], transfer=p["transfer"],
                 no_show=p["no_show"], done=p["done"], pause=p["pause"],
                 ratings=SIM_RATINGS[:_sim_scale(cfg, c)],
                 rating_led=SIM_RATING_LED, transfer_targets=tuple(others))


def demo_config(cfg: BranchConfig, *, out: Path, printer_url: str, board_url: str,
                broker: str = "", checkin: str = "", debounce_ms: float = 1.0,
                hold_ms: float = 400.0, fast_buttons: bool = True,
                status_timeout_ms: int = 2000) -> BranchConfig:
    """The demo's copy of ``cfg`` (see module docstring).

    ``fast_buttons=False`` keeps the configured debounce/hold (a person pressing).
    """
    rep = msgspec.structs.replace
    gpio = rep(cfg.gpio, pin_factory="mock")
    if fast_buttons:
        gpio = rep(gpio, debounce_ms=debounce_ms, hold_ms=hold_ms, stuck_ms=60_000.0,
                   repeat_ms=debounce_ms)
    counters = tuple(
        c if c.panel is not None else rep(c, panel=_sim_panel(cfg, c), device=f"demo-{c.id}",
                                          rating_scale=_sim_scale(cfg, c))
        for c in cfg.counters)
    printer = rep(cfg.kiosk.printer, url=printer_url,
                  status_timeout_ms=max(cfg.kiosk.printer.status_timeout_ms, status_timeout_ms))
    kiosk = rep(cfg.kiosk, checkin=checkin, printer=printer)
    return rep(
        cfg,
        counters=counters,
        kiosk=kiosk,
        storage=rep(cfg.storage, dir=str(out.resolve())),
        clock=rep(cfg.clock, trust="always", allow_untrusted=True),
        board=rep(cfg.board, url=board_url),
        # virtual time outruns real synthesis at --speed max: keep every call's WAV
        voice=rep(cfg.voice, output=f"dir:{(out / 'wav').resolve()}", max_age_s=86_400.0,
                  quiet_hours=()),
        gpio=gpio,
        mqtt=rep(cfg.mqtt, url=broker),
    )


def first_weekday(after: date) -> date:
    d = after
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


def opening_time(cfg: BranchConfig, day: date) -> datetime:
    """The branch's earliest opening on ``day`` (local), as aware UTC."""
    starts = [span[0] for s in cfg.services for span in service_spans(s, day.weekday())]
    opening = min(starts) if starts else time(9, 0)
    return datetime.combine(day, opening, tzinfo=cfg.tz).astimezone(UTC)


def closing_time(cfg: BranchConfig, day: date) -> datetime:
    ends = [span[1] for s in cfg.services for span in service_spans(s, day.weekday())]
    closing = max((e for e in ends if e != time(0, 0)), default=time(17, 0))
    return datetime.combine(day, closing, tzinfo=cfg.tz).astimezone(UTC)


def day_minutes(cfg: BranchConfig, day: date) -> float:
    return (closing_time(cfg, day) - opening_time(cfg, day)).total_seconds() / 60.0


def default_customers(cfg: BranchConfig, minutes: float) -> int:
    """About 80% of what the counters can serve in ``minutes`` (a busy, stable day).

    With visit routes (``services[].then``) every customer of a kiosk service also
    needs each service of its route: the day is then 80% of what the busiest service
    on the routes can take (the clinic: as many patients as its doctors can see).
    """
    per_hour = 0.0
    by_service: dict[str, float] = {}
    for c in cfg.counters:
        total = sum(cs.weight for cs in c.services)
        mean = sum(cfg.service(cs.service).default_service_s * cs.weight
                   for cs in c.services) / total
        rate = 3600.0 / (mean + 60.0)  # + walk-up and call gaps
        per_hour += rate
        for cs in c.services:
            by_service[cs.service] = by_service.get(cs.service, 0.0) + rate * cs.weight / total
    return max(1, int(0.8 * min(per_hour, _route_limit(cfg, by_service)) * minutes / 60.0))


def _route_limit(cfg: BranchConfig, capacity: dict[str, float]) -> float:
    """Customers per hour the kiosk's services can take when each customer also visits
    the services of its route (split among kiosk services by their capacity)."""
    from tessera.engine.routes import route_of

    entry = sorted({b.service for b in cfg.kiosk.buttons})
    if not any(route_of(cfg, s) for s in entry):
        return float("inf")
    total = sum(capacity.get(s, 0.0) for s in entry) or 1.0
    load: dict[str, float] = {}
    for s in entry:
        for x in (s, *route_of(cfg, s)):
            load[x] = load.get(x, 0.0) + capacity.get(s, 0.0) / total
    return min((capacity.get(x, 0.0) / share for x, share in load.items() if share > 0),
               default=float("inf"))
