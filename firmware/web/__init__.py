"""The web role: hall TV display, mobile ticket pages, supervisor console (docs/web.md).

Nothing here imports Starlette at import time except ``tessera.web.app`` and
``tessera.web.role``, so the printing path can sign QR links (``tessera.web.links``)
on a kiosk Pi without the ``web`` extra.
"""

__all__ = ["accounts", "checks", "hub", "links", "views"]
