"""Fixtures of the desk tests."""

from tests.desks.inbound_rig import rig_factory

__all__ = ["rig_factory"]
