"""New orders: a Kabinet plugin."""

__version__ = "0.1.0"
