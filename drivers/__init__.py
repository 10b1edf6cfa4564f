"""Instrument drivers (installed as labctl.drivers)."""
