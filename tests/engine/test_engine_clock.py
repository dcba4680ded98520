"""Clock trust on a Pi without RTC (issue 15): each ``clock.trust`` policy with injected
time sources (a virtual wall clock, a virtual CLOCK_BOOTTIME and boot id, a sync source
that answers what the test says): no sleeping, no real clock changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from engine_support import make_config

from tessera.clock import VirtualClock
from tessera.config import BranchConfig
from tessera.engine import Engine
from tessera.engine.errors import BadClockTime, ClockBackwards, ClockSynced, ClockUntrusted

START = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)  # a Friday, GMT; clocks go forward Sunday


class VirtualBoot:
    """CLOCK_BOOTTIME and the boot id of a virtual Pi: boot time runs with the virtual
    clock's monotonic time; ``power_cut()`` starts a new boot."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.n = 1
        self.zero = clock.monotonic()

    def boot_id(self) -> str:
        return f"boot-{self.n}"

    def boottime(self) -> float:
        return 10.0 + self.clock.monotonic() - self.zero

    def power_cut(self) -> None:
        self.n += 1
        self.zero = self.clock.monotonic()


class Ntp:
    """The sync source (timedatectl's answer, the flag file): what the test sets."""

    def __init__(self, synced: bool) -> None:
        self.synced = synced

    def __call__(self) -> bool:
        return self.synced


class Pi:
    """One engine Pi: virtual wall clock, virtual boot, the store on a real file."""

    def __init__(self, tmp_path: Path, cfg: BranchConfig, ntp: Ntp) -> None:
        self.cfg, self.ntp, self.db = cfg, ntp, tmp_path / "engine.db"
        self.clock = VirtualClock(START)
        self.boot = VirtualBoot(self.clock)
        self.engine = self.open()

    def open(self) -> Engine:
        return Engine.open(self.cfg, self.clock, self.db, trust=self.ntp, boot=self.boot)

    def restart(self) -> None:
        self.engine.close()
        self.engine = self.open()

    def power_cut(self, boots_at: datetime) -> None:
        """Off, then on: a new boot whose wall clock starts at ``boots_at`` (fake-hwclock)."""
        self.engine.close()
        self.boot.power_cut()
        self.clock.set(boots_at)
        self.engine = self.open()

    def events(self, type_: str) -> list[dict[str, object]]:
        return [e["data"] for e in self.engine.events_since(0) if e["type"] == type_]


@pytest.fixture(params=["timedatectl", "flag-file"])
def pi(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pi]:
    cfg = make_config(clock_toml=f'trust = "{request.param}"\nsync_flag = "{tmp_path}/flag"')
    p = Pi(tmp_path, cfg, Ntp(synced=True))
    yield p
    p.engine.close()


def _issued_at(engine: Engine) -> datetime:
    return datetime.fromisoformat(engine.issue("cash").issued_at)


def test_trust_outlives_ntp_while_the_pi_stays_on(pi: Pi) -> None:
    assert pi.engine.issue("cash").number == "A001"  # synced: the anchor is kept
    pi.ntp.synced = False  # the uplink is gone; timedatectl stops saying "yes"
    pi.clock.advance(2 * 3600)
    assert _issued_at(pi.engine) == START + timedelta(hours=2)
    # someone steps the system clock by hand: the engine keeps anchor + boot time
    pi.clock.set(START + timedelta(hours=9))
    pi.clock.advance(60)
    assert _issued_at(pi.engine) == START + timedelta(hours=2, minutes=1)
    pi.restart()  # the engine restarts, the Pi does not: still trusted
    pi.clock.advance(60)
    assert _issued_at(pi.engine) == START + timedelta(hours=2, minutes=2)
    assert [e["clock"] for e in pi.engine.events_since(0)
            if e["type"] == "ticket.issued"] == ["synced"] * 4


def test_after_a_power_cut_staff_set_the_time(pi: Pi) -> None:
    pi.engine.confirm_printed(pi.engine.issue("cash").id)
    pi.clock.advance(3 * 3600)
    pi.engine.issue("cash")  # 12:00, the last recorded activity
    pi.ntp.synced = False
    # power cut at 12:30 for an hour; fake-hwclock restores 11:00 (its last save)
    pi.power_cut(boots_at=START + timedelta(hours=2))
    with pytest.raises(ClockUntrusted) as e:
        pi.engine.issue("cash")
    assert "this Pi has restarted since its time was last confirmed" in str(e.value)
    assert "tessera clock set" in str(e.value)
    # the clock running on from an old time past the last activity is still not trusted
    pi.clock.advance(2 * 3600)
    with pytest.raises(ClockUntrusted):
        pi.engine.issue("cash")
    before = pi.engine.events_since(0)
    # it is 13:45 on Friday (GMT): staff read it off their watch, local time
    result = pi.engine.set_clock("2026-03-27 13:45", staff="t-001", device="counter-main")
    assert (result.time, result.staff, result.device) == ("2026-03-27T13:45:00.000Z", "t-001",
                                                          "counter-main")
    [clock_set] = [e for e in pi.engine.events_since(before[-1]["seq"])]
    assert clock_set["type"] == "clock.set" and clock_set["ts"] == "2026-03-27T13:45:00.000Z"
    assert clock_set["data"] == {"staff": "t-001", "device": "counter-main",
                                 "time": "2026-03-27T13:45:00.000Z",
                                 "previous": "2026-03-27T13:00:00.000Z", "step_s": 2700.0,
                                 "source": "staff"}
    pi.clock.advance(30)
    t = pi.engine.issue("cash")
    assert (t.number, t.issued_at) == ("A003", "2026-03-27T13:45:30.000Z")
    pi.restart()  # the staff's time holds across an engine restart of the same boot
    pi.clock.advance(30)
    assert _issued_at(pi.engine) == START + timedelta(hours=4, minutes=46)


def test_staff_time_follows_the_clocks_going_forward(pi: Pi) -> None:
    pi.engine.issue("cash")
    pi.ntp.synced = False
    pi.power_cut(boots_at=START)
    pi.engine.set_clock("2026-03-29 00:30", staff="t-001")  # Sunday 00:30 GMT
    pi.clock.advance(3600)  # 01:30 GMT = 02:30 BST
    t = pi.engine.issue("cash")
    assert (t.issued_at, t.business_day) == ("2026-03-29T01:30:00.000Z", "2026-03-28")
    with pytest.raises(BadClockTime, match="does not exist"):
        pi.engine.set_clock("2026-03-29 01:30", staff="t-001")  # that hour was skipped


def test_ntp_coming_back_takes_over(pi: Pi) -> None:
    pi.engine.issue("cash")
    pi.ntp.synced = False
    pi.power_cut(boots_at=START - timedelta(hours=1))
    pi.engine.set_clock("2026-03-27 09:30", staff="t-001")
    pi.ntp.synced = True  # NTP is back and stepped the system clock to the truth
    pi.clock.set(START + timedelta(minutes=31))
    pi.clock.advance(61)  # past the trust cache: the sync source is asked again
    # the command that asks still runs on the staff's time (their watch was a minute
    # slow); from the next one on, the engine follows the synchronised system clock
    assert _issued_at(pi.engine) == START + timedelta(minutes=31, seconds=1)
    assert _issued_at(pi.engine) == START + timedelta(minutes=32, seconds=1)
    with pytest.raises(ClockSynced):
        pi.engine.set_clock("2026-03-27 10:00", staff="t-001")


@pytest.mark.parametrize(("when", "error", "words"), [
    ("tomorrow 9", BadClockTime, "write YYYY-MM-DD HH:MM"),
    ("1999-03-27 09:00", BadClockTime, "the year must be 2000-2999"),
    ("2026-03-27 08:00", ClockBackwards, "earlier than the last recorded activity"),
    ("2026-05-27 08:00", BadClockTime, "more than 31 days after"),
])
def test_a_wrong_set_clock_changes_nothing(pi: Pi, when: str, error: type[Exception],
                                           words: str) -> None:
    pi.clock.advance(1800)
    pi.engine.issue("cash")  # 09:30
    pi.ntp.synced = False
    pi.power_cut(boots_at=START - timedelta(hours=3))
    events = pi.engine.events_since(0)
    anchor = pi.engine.conn.execute("SELECT value FROM meta WHERE key = 'clock_anchor'"
                                    ).fetchone()
    with pytest.raises(error, match=words):
        pi.engine.set_clock(when, staff="t-001")
    assert pi.engine.events_since(0) == events
    assert pi.engine.conn.execute("SELECT value FROM meta WHERE key = 'clock_anchor'"
                                  ).fetchone() == anchor
    with pytest.raises(ClockUntrusted):
        pi.engine.issue("cash")


def test_always_trusts_the_clock_but_never_backwards(tmp_path: Path) -> None:
    pi = Pi(tmp_path, make_config(clock_toml='trust = "always"'), Ntp(synced=True))
    try:
        pi.engine.issue("cash")
        pi.power_cut(boots_at=START - timedelta(hours=1))  # an old time after a power cut
        with pytest.raises(ClockUntrusted, match="earlier than the last recorded activity"):
            pi.engine.issue("cash")
        pi.engine.set_clock("2026-03-27 09:10", staff="t-001")  # staff correct it
        pi.clock.advance(5)
        assert _issued_at(pi.engine) == START + timedelta(minutes=10, seconds=5)
        assert [d["staff"] for d in pi.events("clock.set")] == ["t-001"]
    finally:
        pi.engine.close()


def test_an_unsynced_pi_that_never_knew_the_time_refuses(tmp_path: Path) -> None:
    pi = Pi(tmp_path, make_config(clock_toml='trust = "timedatectl"'), Ntp(synced=False))
    try:
        with pytest.raises(ClockUntrusted, match=r"timedatectl reports no NTP sync\)\. Tickets"):
            pi.engine.issue("cash")
        # nothing issued; the refusal itself is kept for the reports (kiosk.refused)
        assert [(e["type"], e["data"]["reason"]) for e in pi.engine.events_since(0)] == [
            ("kiosk.refused", "clock_untrusted")]
        assert pi.engine.conn.execute("SELECT COUNT(*) FROM tickets").fetchone() == (0,)
    finally:
        pi.engine.close()
