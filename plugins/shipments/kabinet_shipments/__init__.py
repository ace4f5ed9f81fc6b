"""Kabinet shipments app: orders, invoices, contracts and balances for clients."""

__version__ = "0.1.0"
