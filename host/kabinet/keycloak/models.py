"""Tables of the ``keycloak`` plugin.

``keycloak_login`` holds a sign-in between leaving for Keycloak and coming back: the
browser keeps only a random value in a cookie, stored here as its SHA-256, so the state,
nonce and PKCE verifier never leave the server and each can be used once.
``keycloak_session`` ties a portal session (by identity's session key, itself a digest)
to the Keycloak session it came from, so that logging out of one ends the other.
``keycloak_erased`` remembers the Keycloak users of people removed in the portal (as keyed
digests of their ids, nothing readable) so that none of them signs in again.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Table, Text

from kabinet.db import plugin_metadata

metadata = plugin_metadata()

login = Table(
    "keycloak_login",
    metadata,
    Column("key", String(64), primary_key=True, comment="SHA-256 of the browser's cookie"),
    Column("state", String(100), nullable=False),
    Column("nonce", String(100), nullable=False),
    Column("code_verifier", String(200), nullable=False),
    Column("redirect_uri", String(500), nullable=False),
    Column("next_path", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    comment="Sign-ins in progress at Keycloak; each row is used once",
)

session = Table(
    "keycloak_session",
    metadata,
    Column("key", String(64), primary_key=True, comment="identity's session key (a digest)"),
    # identity's account id; no foreign key across plugins' tables (as roles_grant).
    Column("account_id", Integer, nullable=False, index=True),
    Column("subject", String(200), nullable=False, comment="Keycloak's user id (sub)"),
    Column("keycloak_session", String(200), nullable=False, comment="Keycloak's sid"),
    # Both tokens sealed (Fernet, a key derived from [host] secret_key): KeycloakAccounts.seal
    Column("refresh_token", Text, nullable=False),
    Column("id_token", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    comment="The Keycloak session behind each portal session started through Keycloak",
)

erased = Table(
    "keycloak_erased",
    metadata,
    Column(
        "subject_digest",
        String(64),
        primary_key=True,
        comment="HMAC-SHA256 of the Keycloak user id (a key derived from secret_key)",
    ),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    comment="Keycloak users of people removed in the portal: never signed in again",
)
