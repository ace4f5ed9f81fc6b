"""Signing in through Keycloak: the OIDC authorization-code flow with PKCE.

:meth:`LoginFlow.begin` makes a fresh state, nonce and PKCE verifier, keeps them in
``keycloak_login`` under the digest of a random value the browser keeps in a cookie, and
returns Keycloak's authorization URL. :meth:`LoginFlow.complete` takes that row (once),
checks the returned state against it, exchanges the code with the verifier, and verifies
the ID token against the realm's keys (signature, issuer, audience, expiry, nonce). The
routes only move cookies and redirects; every rule is here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import structlog
from jwcrypto.common import JWException  # type: ignore[import-untyped]
from keycloak.exceptions import KeycloakError
from keycloak.pkce_utils import generate_code_challenge, generate_code_verifier
from sqlalchemy import delete, insert, select

from kabinet.keycloak.errors import LoginError
from kabinet.keycloak.models import login
from kabinet.pages import safe_next

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet.keycloak.client import KeycloakClients
    from kabinet.keycloak.settings import KeycloakSettings

log = structlog.get_logger("kabinet.keycloak")


@dataclasses.dataclass(frozen=True)
class KeycloakPerson:
    """Who Keycloak says signed in, from the verified ID token, with the session's tokens."""

    subject: str
    username: str
    email: str | None
    email_verified: bool
    full_name: str
    session_id: str
    refresh_token: str
    id_token: str


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class LoginFlow:
    """Starts and completes sign-ins at Keycloak."""

    def __init__(self, host: Host, clients: KeycloakClients, settings: KeycloakSettings) -> None:
        self.host = host
        self.clients = clients
        self.settings = settings

    async def begin(self, redirect_uri: str, next_path: str | None = None) -> tuple[str, str]:
        """Record a new sign-in; returns (the browser's cookie value, Keycloak's URL)."""
        browser = secrets.token_urlsafe(32)
        state = secrets.token_urlsafe(24)
        nonce = secrets.token_urlsafe(24)
        verifier = generate_code_verifier()
        challenge, method = generate_code_challenge(verifier)
        try:
            url = await self.clients.openid().a_auth_url(
                redirect_uri=quote(redirect_uri, safe=""),
                scope=quote(self.settings.scope, safe=""),
                state=state,
                nonce=nonce,
                code_challenge=challenge,
                code_challenge_method=method,
            )
        except KeycloakError as exc:
            log.warning("keycloak.unreachable", step="discovery", error=_describe(exc))
            raise LoginError(
                "unavailable", "Keycloak is not reachable; try again in a minute", 503
            ) from None
        now = self.host.clock.now()
        async with self.host.db.session() as s:
            await s.execute(
                delete(login).where(
                    login.c.created_at < now - dt.timedelta(seconds=self.settings.login_timeout)
                )
            )
            await s.execute(
                insert(login).values(
                    key=digest(browser),
                    state=state,
                    nonce=nonce,
                    code_verifier=verifier,
                    redirect_uri=redirect_uri,
                    next_path=safe_next(next_path),
                    created_at=now,
                )
            )
        return browser, url

    async def complete(
        self, browser: str | None, params: dict[str, str]
    ) -> tuple[KeycloakPerson, str]:
        """Finish the sign-in Keycloak sent back; returns the person and where to go next."""
        pending = await self._take(browser)
        if pending is None:
            raise LoginError(
                "no_login",
                "This sign-in was not started in this browser or has expired; sign in again",
            )
        if "error" in params:
            raise LoginError(
                "refused", f"Keycloak did not sign you in ({params['error'][:100]}); try again"
            )
        if not hmac.compare_digest(params.get("state", ""), pending["state"]):
            raise LoginError("state", "The sign-in answer does not match this sign-in (state)")
        code = params.get("code", "")
        if not code:
            raise LoginError("code", "Keycloak's answer has no authorization code")
        openid = self.clients.openid()
        try:
            issuer = str((await openid.a_well_known())["issuer"])
        except KeycloakError as exc:
            log.warning("keycloak.unreachable", step="discovery", error=_describe(exc))
            raise LoginError("unavailable", "Keycloak is not reachable; try again", 503) from None
        if "iss" in params and params["iss"] != issuer:
            raise LoginError("issuer", "The sign-in answer comes from another issuer")
        try:
            tokens = await openid.a_token(
                grant_type="authorization_code",
                code=code,
                redirect_uri=pending["redirect_uri"],
                code_verifier=pending["code_verifier"],
            )
        except KeycloakError as exc:
            log.warning("keycloak.code_refused", error=_describe(exc))
            raise LoginError("token", "Keycloak refused the sign-in code; sign in again") from None
        claims = await self._verify(tokens.get("id_token"), issuer, pending["nonce"])
        person = KeycloakPerson(
            subject=str(claims["sub"]),
            username=str(claims.get("preferred_username") or ""),
            email=_email(claims),
            email_verified=bool(claims.get("email_verified", False)),
            full_name=_full_name(claims),
            session_id=str(claims.get("sid") or tokens.get("session_state") or ""),
            refresh_token=str(tokens.get("refresh_token") or ""),
            id_token=str(tokens["id_token"]),
        )
        return person, str(pending["next_path"])

    async def _take(self, browser: str | None) -> dict[str, Any] | None:
        """The pending sign-in of this browser, removed so that it is used once."""
        if not browser:
            return None
        key = digest(browser)
        async with self.host.db.session() as s:
            row = (await s.execute(select(login).where(login.c.key == key))).mappings().first()
            if row is None:
                return None
            done = await s.execute(delete(login).where(login.c.key == key))
            if not getattr(done, "rowcount", 1):
                return None  # taken by a concurrent request
        created = row["created_at"]
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        age = (self.host.clock.now() - created).total_seconds()
        if age > self.settings.login_timeout:
            return None
        return dict(row)

    async def _verify(self, id_token: Any, issuer: str, nonce: str) -> dict[str, Any]:
        if not isinstance(id_token, str) or not id_token:
            raise LoginError("id_token", "Keycloak sent no ID token (is the scope openid?)")
        try:
            claims = await self.clients.openid().a_decode_token(
                id_token,
                check_claims={
                    "iss": issuer,
                    "aud": self.settings.client_id,
                    "exp": None,
                    "iat": None,
                    "sub": None,
                    "nonce": None,
                },
            )
        except (JWException, ValueError) as exc:
            log.warning("keycloak.id_token_invalid", error=_describe(exc))
            raise LoginError("id_token", "Keycloak's ID token did not verify") from None
        except KeycloakError as exc:
            log.warning("keycloak.unreachable", step="certs", error=_describe(exc))
            raise LoginError("unavailable", "Keycloak is not reachable; try again", 503) from None
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise LoginError("nonce", "The ID token belongs to another sign-in (nonce)")
        azp = claims.get("azp")
        if azp is not None and azp != self.settings.client_id:
            raise LoginError("id_token", "The ID token was issued to another client")
        return claims

    async def end_keycloak_session(self, refresh_token: str) -> bool:
        """End the Keycloak session behind a refresh token; ``False`` when Keycloak refused."""
        try:
            await self.clients.openid().a_logout(refresh_token)
        except KeycloakError as exc:
            log.warning("keycloak.logout_failed", error=_describe(exc))
            return False
        return True


def _email(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    return str(email).strip().lower() if email else None


def _full_name(claims: dict[str, Any]) -> str:
    name = str(claims.get("name") or "").strip()
    if not name:
        parts = [claims.get("given_name"), claims.get("family_name")]
        name = " ".join(str(p) for p in parts if p).strip()
    return name or str(claims.get("preferred_username") or claims.get("email") or "")


def _describe(exc: Exception) -> str:
    """A short reason for the log: the class and status, never a response body."""
    code = getattr(exc, "response_code", None)
    return f"{type(exc).__name__}" + (f" (HTTP {code})" if code else "")
