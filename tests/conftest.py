"""Fixtures every test may use. Shared helpers (paths, writing specs, running the engine) are in
tests/helpers.py; test modules import from there, never from each other or from a conftest."""

from __future__ import annotations

import pytest

from tests.helpers import demo_spec


@pytest.fixture
def demo_dict() -> dict:
    """The demo spec with absolute teacher paths, so a copy can live anywhere."""
    return demo_spec()
