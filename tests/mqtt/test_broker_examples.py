"""The broker examples under systemd/ are what the generator writes for examples/bank.toml.

Regenerate them with ``TESSERA_REGEN_EXAMPLES=1 pytest tests/mqtt/test_broker_examples.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tessera.config import load_config
from tessera.mqtt.broker import acl_text, bridge_lines, dropin_text

ROOT = Path(__file__).resolve().parents[2]
OUT = Path("/etc/mosquitto/tessera")


def _cfg(tmp_path: Path) -> object:
    pki = tmp_path / "pki"
    pki.mkdir()
    for name in ("branch.crt", "branch.key", "hq-ca.crt"):
        (pki / name).write_text("PEM\n")
    (tmp_path / "hq.password").write_text("<from password_file>\n")
    text = (ROOT / "examples" / "bank.toml").read_text(encoding="utf-8")
    text = text.replace('[mqtt]\n', f'''[mqtt]
tls_cert_file = "{pki / 'branch.crt'}"
tls_key_file = "{pki / 'branch.key'}"
credentials_dir = "{tmp_path}"
''', 1)
    text += f'''
[mqtt.hq]
url = "mqtts://hq.example.com:8883"
username = "acme-bank-sh-pudong-01"
password_file = "{tmp_path / 'hq.password'}"
ca_file = "{pki / 'hq-ca.crt'}"
'''
    (tmp_path / "branch.toml").write_text(text, encoding="utf-8")
    (tmp_path / "fonts").mkdir()
    return load_config(tmp_path / "branch.toml", roles=("engine",))


def _check(path: Path, header: str, body: str) -> None:
    want = header + body
    if os.environ.get("TESSERA_REGEN_EXAMPLES"):
        path.write_text(want, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == want, (
        f"{path} is not what the generator writes; regenerate with TESSERA_REGEN_EXAMPLES=1")


def test_examples_are_generated(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    conf = dropin_text(cfg, OUT).replace(str(tmp_path), "/etc/tessera")  # type: ignore[arg-type]
    bridge = "\n".join(bridge_lines(cfg)).replace(str(tmp_path), "/etc/tessera")  # type: ignore[arg-type]
    _check(ROOT / "systemd" / "mosquitto-branch.conf.example",
           "# What `tessera broker config --config /etc/tessera/branch.toml --out\n"
           "# /etc/mosquitto/tessera` writes as tessera.conf for examples/bank.toml with a\n"
           "# TLS certificate and [mqtt.hq] (generate it, do not copy it by hand):\n"
           "#     sudo ln -sf /etc/mosquitto/tessera/tessera.conf /etc/mosquitto/conf.d/\n",
           conf)
    _check(ROOT / "systemd" / "mosquitto-bridge.conf.example",
           "# The bridge part of the example above ([mqtt.hq] of the branch TOML):\n"
           "#   [mqtt.hq]\n#   url = \"mqtts://hq.example.com:8883\"\n"
           "#   username = \"acme-bank-sh-pudong-01\"\n"
           "#   password_file = \"/etc/tessera/hq.password\"   # one line\n"
           "#   ca_file = \"/etc/tessera/pki/hq-ca.crt\"\n"
           "# The generated files hold the HQ password: they belong to the mosquitto user, 0600.\n",
           bridge + "\n")
    _check(ROOT / "systemd" / "acl.example",
           "# The ACL `tessera broker config` writes for examples/bank.toml.\n",
           acl_text(cfg))  # type: ignore[arg-type]


def test_the_acl_example_names_the_role_devices() -> None:
    text = (ROOT / "systemd" / "acl.example").read_text(encoding="utf-8")
    for device in ("engine", "kiosk-main", "counter-main", "display-main"):
        assert f"\nuser {device}\n" in text, device
