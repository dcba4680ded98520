"""Fixtures for tests/mqtt; shared helpers live in mqtt_support (a unique module name,
so test files never import a "conftest" that another directory shadows)."""

from mqtt_support import *  # noqa: F403
