"""``kabinet notifications vapid-keys``: a VAPID key pair for web push."""

from __future__ import annotations

import base64

import click
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02  # type: ignore[import-untyped]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def vapid_keys() -> tuple[str, str]:
    """(public key: the uncompressed point, private key: the raw 32 bytes), b64url."""
    vapid = Vapid02()
    vapid.generate_keys()
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    return b64url(public), b64url(private)


@click.group("notifications")
def group() -> None:
    """The notifications app."""


@group.command("vapid-keys")
def vapid_keys_command() -> None:
    """Print a new VAPID key pair for [notifications] (keep the private key secret)."""
    public, private = vapid_keys()
    click.echo("[notifications]")
    click.echo(f'vapid_public_key = "{public}"')
    click.echo(f'vapid_private_key = "{private}"')
