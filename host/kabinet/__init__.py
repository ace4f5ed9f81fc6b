"""Kabinet: a modular customer portal for freight and logistics companies."""

__version__ = "0.1.0"
