"""Device credentials files (written by ``tessera broker config``, mode 0600).

    load_credentials("/etc/tessera/credentials/kiosk-1.toml")
    # -> ('kiosk-1', '…')
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from tessera.errors import ConfigError


def load_credentials(path: str | Path) -> tuple[str, str]:
    """Read ``username = …`` / ``password = …`` (TOML); the content is never echoed."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return str(data["username"]), str(data["password"])
    except (OSError, KeyError, tomllib.TOMLDecodeError) as e:
        raise ConfigError([f"{path}: not a readable credentials file with username and "
                           f"password ({type(e).__name__}); regenerate it with "
                           "'tessera broker config'"]) from None
