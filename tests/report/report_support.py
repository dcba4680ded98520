"""Helpers shared by the report tests."""

from __future__ import annotations

__all__: list[str] = []
