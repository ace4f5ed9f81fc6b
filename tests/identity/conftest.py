"""Fixtures for the identity tests: a host on the migrated test database, a frozen clock."""

from identity_support import host, identity, make_account

__all__ = ["host", "identity", "make_account"]
