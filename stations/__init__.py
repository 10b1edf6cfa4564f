"""Bundled station files."""
