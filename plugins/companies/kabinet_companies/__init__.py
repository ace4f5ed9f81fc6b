"""Kabinet companies & contacts app:

organizations, counterparties, contacts, registration and link requests.
"""

__version__ = "0.1.0"
