"""``tessera broker config --config FILE --out DIR``: the branch mosquitto's files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("broker", help="generate the branch mosquitto configuration")
    bsub = p.add_subparsers(dest="broker_command", metavar="ACTION", required=True)
    c = bsub.add_parser("config", help="write mosquitto.conf, tessera.conf, acl, passwd and "
                        "per-device credentials (0600) into DIR")
    c.add_argument("--config", required=True, help="branch config (TOML)")
    c.add_argument("--out", required=True,
                   help="output directory (e.g. /etc/mosquitto/tessera): mosquitto.conf "
                        "(standalone), tessera.conf (Debian drop-in for conf.d), acl, passwd, "
                        "tls/, credentials/")
    c.set_defaults(func=config)


def config(args: argparse.Namespace) -> int:
    from tessera.config import load_config
    from tessera.errors import ConfigError, DeviceError
    from tessera.mqtt.broker import device_roles, write_broker_files

    out = Path(args.out)
    bad = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if bad is not None:  # refuse before anything is written
        print(f"tessera broker config: --out {out}: {bad} is a file, not a directory",
              file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config)
        files = write_broker_files(cfg, out)
    except ConfigError as e:
        print(f"{args.config}: {len(e.errors)} error(s):", file=sys.stderr)
        for err in e.errors:
            print(f"  {err}", file=sys.stderr)
        return 2
    except (DeviceError, OSError) as e:
        print(f"tessera broker config: {e}", file=sys.stderr)
        return 1
    # names and paths only: never a password
    for name, path in files.items():
        print(f"{name:<15} {path}")
    for device, roles in sorted(device_roles(cfg).items()):
        print(f"device {device:<12} roles {','.join(roles)}")
    if not cfg.mqtt.tls_cert_file:
        print("warning: no mqtt.tls_cert_file: only the loopback listener is enabled",
              file=sys.stderr)
    print(f"Debian: sudo ln -sf {files['tessera.conf']} /etc/mosquitto/conf.d/ && "
          "sudo systemctl restart mosquitto   (or: mosquitto -c "
          f"{files['mosquitto.conf']}); copy each Pi's credentials/<device>.toml to its "
          "mqtt.credentials_dir")
    return 0
