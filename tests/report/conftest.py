"""Fixtures for tests/report; shared helpers live in report_support (a unique module name,
so test files never import a "conftest" that another directory shadows)."""

from report_support import *  # noqa: F403
