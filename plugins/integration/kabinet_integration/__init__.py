"""Kabinet integration app: delta exchange with the production system (1C:Enterprise)."""

__version__ = "0.1.0"
