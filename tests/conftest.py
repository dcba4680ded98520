"""Shared fixtures. Hardware fakes are reset after every test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def bank_config_path() -> Path:
    return EXAMPLES / "bank.toml"


@pytest.fixture
def clinic_config_path() -> Path:
    return EXAMPLES / "clinic.toml"


@pytest.fixture
def mock_pins() -> Iterator[object]:
    """gpiozero's MockFactory as the default pin factory, reset after the test."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[object]:
    """Factory for real mosquitto brokers on 127.0.0.1 (random free port), stopped at teardown.

        broker = mosquitto()                       # anonymous, no persistence, started
        broker = mosquitto(persistence=True)       # store in its own dir under tmp_path
        broker = mosquitto(extra_conf="acl_file /x", anonymous=False, start=False)
        broker.host, broker.port, broker.workdir   # where it is
        broker.kill(); broker.start()              # SIGKILL and restart on the same port
        broker.restart(); broker.stop()

    Keyword arguments are those of ``tessera.mqtt.local_broker.LocalBroker``
    plus ``start`` (default True). A missing mosquitto fails the test (never a
    silent skip): ``tools/bootstrap.sh`` installs it.
    """
    import shutil

    from tessera.mqtt.local_broker import MOSQUITTO, LocalBroker

    if not Path(MOSQUITTO).exists() and shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed: run tools/bootstrap.sh setup "
                    "(or apt-get install mosquitto mosquitto-clients)")
    brokers: list[LocalBroker] = []

    def make(*, start: bool = True, **kw: object) -> LocalBroker:
        b = LocalBroker(tmp_path / f"broker{len(brokers)}", **kw)  # type: ignore[arg-type]
        brokers.append(b)
        return b.start() if start else b

    try:
        yield make
    finally:
        for b in brokers:
            b.kill()


def broker_dir() -> Path:
    """A directory Debian's ``mosquitto`` user can reach (pytest's tmp_path is 0700 root's):
    generated broker files live here as they would under /etc/mosquitto."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="tessera-broker-"))
    d.chmod(0o755)
    return d


@pytest.fixture
def broker_base() -> Iterator[Path]:
    """``broker_dir()`` for one test, removed afterwards."""
    import shutil

    d = broker_dir()
    try:
        yield d
    finally:
        if not os.environ.get("TESSERA_KEEP_BROKER_DIR"):  # keep it to read the logs
            shutil.rmtree(d, ignore_errors=True)
