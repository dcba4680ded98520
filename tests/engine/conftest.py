"""Fixtures for tests/engine; shared helpers live in engine_support (a unique module name,
so test files never import a "conftest" that another directory shadows)."""

from engine_support import *  # noqa: F403
