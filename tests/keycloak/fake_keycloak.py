"""A local HTTP server that speaks Keycloak's OIDC and admin REST endpoints.

It follows ``shared/reference/wire-formats.md`` section 5: the discovery document, the
authorization endpoint (auto-login of a scripted user, or a tiny login form), the token
endpoint with one-time codes and the PKCE check, RS256 tokens verifiable against ``/certs``,
userinfo, logout (302 in the browser, 204 for ``logout(refresh_token)``), and the admin
routes ``KeycloakAdmin`` calls (201 + ``Location`` on create, 204 on changes). Tests read
its state (users, realm roles, groups, memberships, sessions) and can make a route fail.

It runs in a thread of the test process (``ThreadingHTTPServer``) on a free port of
127.0.0.1, so both the tests and a ``kabinet serve`` subprocess can reach it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import html
import json
import re
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwcrypto import jwk, jwt

ADMIN_REALM = "master"
ADMIN_CLIENT = "admin-cli"
CLIENT_SECRET = "kabinet-secret"
ADMIN_PASSWORD = "admin-password"
ADMIN_CLIENT_SECRET = "sync-secret"


@dataclasses.dataclass
class User:
    id: str
    username: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    enabled: bool = True
    email_verified: bool = False
    password: str = ""
    attributes: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    created: int = 0
    required_actions: list[str] = dataclasses.field(default_factory=list)

    def representation(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "enabled": self.enabled,
            "email": self.email,
            "emailVerified": self.email_verified,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "attributes": self.attributes,
            "createdTimestamp": self.created,
            "requiredActions": self.required_actions,
            "totp": False,
            "disableableCredentialTypes": [],
            "notBefore": 0,
        }


@dataclasses.dataclass
class Group:
    id: str
    name: str
    path: str
    parent_id: str | None = None


@dataclasses.dataclass
class Session:
    id: str
    user_id: str
    realm: str
    client_id: str
    active: bool = True


@dataclasses.dataclass
class Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int | None
    """How many more requests fail; ``None``: every one."""


class FakeKeycloak:
    """One fake Keycloak server with an application realm and the ``master`` admin realm."""

    def __init__(
        self,
        *,
        realm: str = "kabinet",
        client_id: str = "kabinet",
        client_secret: str | None = CLIENT_SECRET,
        admin_username: str = "admin",
        admin_password: str = ADMIN_PASSWORD,
        admin_client_id: str = "kabinet-sync",
        admin_client_secret: str = ADMIN_CLIENT_SECRET,
        redirect_prefix: str = "http://127.0.0.1:",
    ) -> None:
        self.realm = realm
        self.client_id = client_id
        self.client_secret = client_secret
        self.admin_username = admin_username
        self.admin_password = admin_password
        self.admin_client_id = admin_client_id
        self.admin_client_secret = admin_client_secret
        self.redirect_prefix = redirect_prefix
        self.lock = threading.RLock()
        self.key = jwk.JWK.generate(kty="RSA", size=2048, kid=uuid.uuid4().hex, alg="RS256")
        self.cert_b64 = _self_signed(self.key)
        self.signing_key: jwk.JWK | None = None
        """Set to sign tokens with a key ``/certs`` does not publish (a forgery)."""
        self.users: dict[str, User] = {}
        self.roles: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, Group] = {}
        self.user_roles: dict[str, set[str]] = {}
        self.group_roles: dict[str, set[str]] = {}
        self.memberships: dict[str, set[str]] = {}
        self.sessions: dict[str, Session] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.failures: list[Failure] = []
        self.requests: list[tuple[str, str]] = []
        self.logouts: list[dict[str, str]] = []
        self.emails: list[tuple[str, str]] = []
        self.realm_settings: dict[str, Any] = {
            "editUsernameAllowed": False,
            "registrationEmailAsUsername": False,
        }
        """The realm's flags (RealmRepresentation) as Keycloak's defaults: usernames are
        read-only for admins too unless ``editUsernameAllowed``."""
        self.auto_login: str | None = None
        """Username signed in at once by the authorization endpoint (no form)."""
        self.login_count = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for name in ("offline_access", "uma_authorization", f"default-roles-{realm}"):
            self._create_role({"name": name, "description": "built into Keycloak"})

    # -- running -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def issuer(self, realm: str | None = None) -> str:
        return f"{self.url}/realms/{realm or self.realm}"

    def start(self) -> FakeKeycloak:
        fake = self

        class Handler(_Handler):
            keycloak = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- test helpers --------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        *,
        password: str = "",
        email: str = "",
        first_name: str = "",
        last_name: str = "",
        email_verified: bool = True,
        enabled: bool = True,
    ) -> User:
        with self.lock:
            user = User(
                id=str(uuid.uuid4()),
                username=username.lower(),
                email=email.lower(),
                first_name=first_name,
                last_name=last_name,
                email_verified=email_verified,
                enabled=enabled,
                password=password,
                created=int(time.time() * 1000),
            )
            self.users[user.id] = user
            self.user_roles[user.id] = {f"default-roles-{self.realm}"}
            self.memberships[user.id] = set()
            return user

    def user_by_name(self, username: str) -> User | None:
        with self.lock:
            for user in self.users.values():
                if user.username == username.lower():
                    return user
        return None

    def group_paths_of(self, user_id: str) -> set[str]:
        with self.lock:
            return {self.groups[g].path for g in self.memberships.get(user_id, set())}

    def group_paths(self) -> set[str]:
        with self.lock:
            return {g.path for g in self.groups.values()}

    def realm_roles_of(self, user_id: str) -> set[str]:
        with self.lock:
            return set(self.user_roles.get(user_id, set()))

    def fail(self, method: str, path: str, *, status: int = 500, times: int | None = 1) -> None:
        """Make requests ``method`` to paths matching regex ``path`` answer ``status``."""
        with self.lock:
            self.failures.append(Failure(method.upper(), re.compile(path), status, times))

    def open_session(self, user_id: str) -> Session:
        """A Keycloak session of ``user_id``, as a sign-in at Keycloak would leave one."""
        with self.lock:
            session = Session(
                id=str(uuid.uuid4()), user_id=user_id, realm=self.realm, client_id=self.client_id
            )
            self.sessions[session.id] = session
            return session

    def active_sessions(self, user_id: str | None = None) -> list[Session]:
        with self.lock:
            return [
                s
                for s in self.sessions.values()
                if s.active and (user_id is None or s.user_id == user_id)
            ]

    # -- tokens --------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any]) -> str:
        token = jwt.JWT(
            header={"alg": "RS256", "typ": "JWT", "kid": self.key.get("kid")}, claims=claims
        )
        token.make_signed_token(self.signing_key or self.key)
        return str(token.serialize())

    def verify(self, token: str, realm: str) -> dict[str, Any] | None:
        try:
            parsed = jwt.JWT(jwt=token, key=self.key, check_claims={"exp": None})
        except Exception:  # any fault of the token means "not valid" to a client
            return None
        claims: dict[str, Any] = json.loads(parsed.claims)
        if claims.get("iss") != self.issuer(realm):
            return None
        return claims

    def tokens(self, session: Session, nonce: str | None, scope: str) -> dict[str, Any]:
        now = int(time.time())
        realm = session.realm
        common = {
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer(realm),
            "sub": session.user_id,
            "azp": session.client_id,
            "sid": session.id,
            "session_state": session.id,
        }
        user = self.users.get(session.user_id)
        profile: dict[str, Any] = {}
        if user is not None:
            profile = {
                "preferred_username": user.username,
                "email": user.email,
                "email_verified": user.email_verified,
                "name": f"{user.first_name} {user.last_name}".strip(),
                "given_name": user.first_name,
                "family_name": user.last_name,
            }
            roles = sorted(self.user_roles.get(user.id, set()))
        else:
            roles = []
            profile = {"preferred_username": f"service-account-{session.client_id}"}
        access = {
            **common,
            **profile,
            "exp": now + 300,
            "aud": "account",
            "typ": "Bearer",
            "scope": scope,
            "realm_access": {"roles": roles},
            "resource_access": {},
        }
        refresh = {**common, "exp": now + 1800, "aud": self.issuer(realm), "typ": "Refresh"}
        result: dict[str, Any] = {
            "access_token": self.sign(access),
            "expires_in": 300,
            "refresh_expires_in": 1800,
            "refresh_token": self.sign(refresh),
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session.id,
            "scope": scope,
        }
        if "openid" in scope.split():
            id_claims = {**common, **profile, "exp": now + 300, "aud": session.client_id}
            id_claims["typ"] = "ID"
            id_claims["auth_time"] = now
            if nonce:
                id_claims["nonce"] = nonce
            result["id_token"] = self.sign(id_claims)
        return result

    def well_known(self, realm: str) -> dict[str, Any]:
        base = f"{self.issuer(realm)}/protocol/openid-connect"
        return {
            "issuer": self.issuer(realm),
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "introspection_endpoint": f"{base}/token/introspect",
            "userinfo_endpoint": f"{base}/userinfo",
            "end_session_endpoint": f"{base}/logout",
            "jwks_uri": f"{base}/certs",
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "password",
                "client_credentials",
            ],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "authorization_response_iss_parameter_supported": True,
        }

    def _create_role(self, payload: dict[str, Any]) -> dict[str, Any]:
        role = {
            "id": str(uuid.uuid4()),
            "name": payload["name"],
            "description": payload.get("description", ""),
            "composite": False,
            "clientRole": False,
            "containerId": self.realm,
            "attributes": payload.get("attributes", {}),
        }
        self.roles[role["name"]] = role
        return role


def _self_signed(key: jwk.JWK) -> str:
    private = serialization.load_pem_private_key(
        key.export_to_pem(private_key=True, password=None), None
    )
    assert isinstance(private, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-keycloak")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(private, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _b64url_sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _Reply(Exception):
    """Ends a request with a status, a JSON (or empty) body and headers."""

    def __init__(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


class _Handler(BaseHTTPRequestHandler):
    keycloak: FakeKeycloak
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``FakeKeycloak.requests`` instead."""

    # -- plumbing ------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        kc = self.keycloak
        split = urlsplit(self.path)
        path = unquote(split.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        self.raw_body = self.rfile.read(length) if length else b""
        with kc.lock:
            kc.requests.append((method, path))
            for failure in kc.failures:
                if failure.method == method and failure.pattern.search(path):
                    if failure.times is not None:
                        failure.times -= 1
                        if failure.times <= 0:
                            kc.failures.remove(failure)
                    self._send(failure.status, {"error": "unknown_error"})
                    return
        try:
            with kc.lock:
                self._route(method, path)
        except _Reply as reply:
            self._send(reply.status, reply.body, reply.headers)

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if isinstance(body, str):
            data = body.encode()
            headers.setdefault("Content-Type", "text/html; charset=utf-8")
        elif body is None:
            data = b""
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.raw_body.decode()).items()}

    def json_body(self) -> Any:
        try:
            return json.loads(self.raw_body or b"null")
        except json.JSONDecodeError:
            raise _Reply(400, {"error": "invalid_request"}) from None

    # -- routes --------------------------------------------------------------------------

    def _route(self, method: str, path: str) -> None:
        kc = self.keycloak
        m = re.fullmatch(r"/realms/([^/]+)(/.*)?", path)
        if m:
            realm, rest = m.group(1), m.group(2) or ""
            if realm not in {kc.realm, ADMIN_REALM}:
                raise _Reply(404, {"error": "Realm does not exist"})
            self._oidc(method, realm, rest)
            return
        m = re.fullmatch(r"/admin/realms/([^/]+)(/.*)?", path)
        if m:
            self._require_admin()
            if m.group(1) != kc.realm:
                raise _Reply(404, {"error": "Realm not found."})
            self._admin(method, m.group(2) or "")
            return
        raise _Reply(404, {"error": "Unable to find matching target resource method"})

    def _oidc(self, method: str, realm: str, rest: str) -> None:
        kc = self.keycloak
        oc = "/protocol/openid-connect"
        if method == "GET" and rest == "":
            public = kc.key.export_to_pem(private_key=False).decode()
            body = "".join(public.strip().splitlines()[1:-1])
            raise _Reply(200, {"realm": realm, "public_key": body, "token-service": ""})
        if method == "GET" and rest == "/.well-known/openid-configuration":
            raise _Reply(200, kc.well_known(realm))
        if rest == f"{oc}/auth" and method in {"GET", "POST"}:
            self._auth(method, realm)
            return
        if method == "POST" and rest == f"{oc}/token":
            self._token(realm)
            return
        if method == "GET" and rest == f"{oc}/certs":
            key = json.loads(kc.key.export_public())
            key.update({"use": "sig", "alg": "RS256", "x5c": [kc.cert_b64]})
            raise _Reply(200, {"keys": [key]})
        if rest == f"{oc}/userinfo" and method in {"GET", "POST"}:
            self._userinfo(realm)
            return
        if rest == f"{oc}/logout" and method in {"GET", "POST"}:
            self._logout(method, realm)
            return
        raise _Reply(404, {"error": "Unable to find matching target resource method"})

    # -- OIDC ----------------------------------------------------------------------------

    def _auth(self, method: str, realm: str) -> None:
        kc = self.keycloak
        params = dict(self.query)
        if method == "POST":
            params.update(self.form())
        if realm != kc.realm or params.get("client_id") != kc.client_id:
            raise _Reply(400, "<h1>Client not found.</h1>")
        redirect = params.get("redirect_uri", "")
        if not redirect.startswith(kc.redirect_prefix):
            raise _Reply(400, "<h1>Invalid parameter: redirect_uri</h1>")
        if params.get("response_type") != "code":
            raise _Reply(400, "<h1>Invalid parameter: response_type</h1>")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise _Reply(400, "<h1>Missing parameter: code_challenge_method</h1>")
        user = None
        cookie = self._cookie("KEYCLOAK_SESSION")
        session = kc.sessions.get(cookie or "")
        if session is not None and session.active:
            user = kc.users.get(session.user_id)
        elif kc.auto_login is not None:
            user = kc.user_by_name(kc.auto_login)
        elif method == "POST":
            found = kc.user_by_name(params.get("username", ""))
            if found is not None and found.password and found.password == params.get("password"):
                user = found
        if user is None or not user.enabled:
            error = "Invalid username or password." if method == "POST" else ""
            raise _Reply(200, self._login_form(realm, params, error))
        if session is None or not session.active:
            session = Session(
                id=str(uuid.uuid4()), user_id=user.id, realm=realm, client_id=kc.client_id
            )
            kc.sessions[session.id] = session
        kc.login_count += 1
        code = f"{secrets.token_urlsafe(16)}.{session.id}"
        kc.codes[code] = {
            "session": session.id,
            "redirect_uri": redirect,
            "challenge": params["code_challenge"],
            "nonce": params.get("nonce", ""),
            "scope": unquote(params.get("scope", "openid")),
            "expires": time.time() + 60,
        }
        query = {"session_state": session.id, "iss": kc.issuer(realm), "code": code}
        if "state" in params:
            query = {"state": params["state"], **query}
        sep = "&" if "?" in redirect else "?"
        cookie_header = f"KEYCLOAK_SESSION={session.id}; Path=/realms/{realm}/; HttpOnly"
        raise _Reply(
            302, None, {"Location": redirect + sep + urlencode(query), "Set-Cookie": cookie_header}
        )

    def _login_form(self, realm: str, params: dict[str, str], error: str) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
            if k not in {"username", "password"}
        )
        action = f"/realms/{realm}/protocol/openid-connect/auth"
        message = f'<p id="input-error">{html.escape(error)}</p>' if error else ""
        return (
            "<!doctype html><title>Sign in to kabinet</title><h1>Sign in to your account</h1>"
            f'{message}<form id="kc-form-login" method="post" action="{action}">{hidden}'
            '<label>Username or email <input id="username" name="username"></label>'
            '<label>Password <input id="password" name="password" type="password"></label>'
            '<button id="kc-login" type="submit">Sign In</button></form>'
        )

    def _cookie(self, name: str) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None

    def _client_auth(self, form: dict[str, str], realm: str) -> str:
        """The authenticated client id, or a 401 ``invalid_client``."""
        kc = self.keycloak
        client_id = form.get("client_id", "")
        secret = form.get("client_secret")
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            decoded = base64.b64decode(basic[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        if realm == ADMIN_REALM:
            if client_id == ADMIN_CLIENT:
                return client_id
            if client_id == kc.admin_client_id and secret == kc.admin_client_secret:
                return client_id
        elif client_id == kc.client_id and (kc.client_secret is None or secret == kc.client_secret):
            return client_id
        raise _Reply(
            401,
            {
                "error": "invalid_client",
                "error_description": "Invalid client or Invalid client credentials",
            },
        )

    def _token(self, realm: str) -> None:
        kc = self.keycloak
        form = self.form()
        client_id = self._client_auth(form, realm)
        grant = form.get("grant_type")
        scope = form.get("scope") or "openid"
        invalid = {"error": "invalid_grant", "error_description": "Code not valid"}
        if grant == "authorization_code":
            entry = kc.codes.pop(form.get("code", ""), None)
            if entry is None or entry["expires"] < time.time():
                raise _Reply(400, invalid)
            if form.get("redirect_uri") != entry["redirect_uri"]:
                raise _Reply(
                    400, {"error": "invalid_grant", "error_description": "Incorrect redirect_uri"}
                )
            verifier = form.get("code_verifier", "")
            if not verifier or _b64url_sha256(verifier) != entry["challenge"]:
                raise _Reply(
                    400,
                    {"error": "invalid_grant", "error_description": "PKCE verification failed"},
                )
            session = kc.sessions[entry["session"]]
            if not session.active:
                raise _Reply(400, invalid)
            raise _Reply(200, kc.tokens(session, entry["nonce"], entry["scope"]))
        if grant == "refresh_token":
            claims = kc.verify(form.get("refresh_token", ""), realm)
            session = kc.sessions.get(claims["sid"]) if claims else None
            if claims is None or session is None or not session.active:
                raise _Reply(
                    400, {"error": "invalid_grant", "error_description": "Token is not active"}
                )
            raise _Reply(200, kc.tokens(session, None, claims.get("scope", scope)))
        if grant == "password" and realm == ADMIN_REALM and client_id == ADMIN_CLIENT:
            if (
                form.get("username") != kc.admin_username
                or form.get("password") != kc.admin_password
            ):
                raise _Reply(
                    401, {"error": "invalid_grant", "error_description": "Invalid user credentials"}
                )
            session = Session(
                id=str(uuid.uuid4()), user_id="admin", realm=realm, client_id=client_id
            )
            kc.sessions[session.id] = session
            raise _Reply(200, kc.tokens(session, None, "profile email"))
        if grant == "client_credentials" and realm == ADMIN_REALM and client_id != ADMIN_CLIENT:
            session = Session(
                id=str(uuid.uuid4()),
                user_id=f"service-{client_id}",
                realm=realm,
                client_id=client_id,
            )
            kc.sessions[session.id] = session
            tokens = kc.tokens(session, None, "profile email")
            tokens.pop("refresh_token")
            tokens.pop("refresh_expires_in")
            raise _Reply(200, tokens)
        raise _Reply(
            400,
            {"error": "unauthorized_client", "error_description": f"Grant {grant} not allowed"},
        )

    def _bearer(self, realm: str) -> dict[str, Any] | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        claims = self.keycloak.verify(header[7:], realm)
        if claims is None or claims.get("typ") != "Bearer":
            return None
        session = self.keycloak.sessions.get(claims.get("sid", ""))
        if session is None or not session.active:
            return None
        return claims

    def _userinfo(self, realm: str) -> None:
        claims = self._bearer(realm)
        if claims is None:
            raise _Reply(
                401, {"error": "invalid_token", "error_description": "Token verification failed"}
            )
        keys = ("sub", "preferred_username", "email", "email_verified", "name")
        keys += ("given_name", "family_name")
        raise _Reply(200, {k: claims[k] for k in keys if k in claims})

    def _logout(self, method: str, realm: str) -> None:
        kc = self.keycloak
        if method == "POST" and "refresh_token" in self.form():
            form = self.form()
            self._client_auth(form, realm)
            claims = kc.verify(form["refresh_token"], realm)
            session = kc.sessions.get(claims["sid"]) if claims else None
            if session is None or not session.active:
                raise _Reply(
                    400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}
                )
            session.active = False
            kc.logouts.append({"kind": "refresh_token", "session": session.id})
            raise _Reply(204)
        params = {**self.query, **(self.form() if method == "POST" else {})}
        hint = params.get("id_token_hint")
        session_id = None
        if hint:
            claims = kc.verify(hint, realm)
            session_id = claims.get("sid") if claims else None
        session_id = session_id or self._cookie("KEYCLOAK_SESSION")
        session = kc.sessions.get(session_id or "")
        if session is not None:
            session.active = False
        kc.logouts.append({"kind": "browser", "session": session_id or ""})
        target = params.get("post_logout_redirect_uri")
        if target:
            if not hint and not params.get("client_id"):
                raise _Reply(400, "<h1>Missing parameters: id_token_hint</h1>")
            raise _Reply(302, None, {"Location": target})
        raise _Reply(200, "<h1>You are logged out</h1>")

    # -- admin REST ----------------------------------------------------------------------

    def _require_admin(self) -> None:
        claims = self._bearer(ADMIN_REALM)
        if claims is None:
            raise _Reply(401, {"error": "HTTP 401 Unauthorized"})

    def _page(self, items: list[Any]) -> list[Any]:
        first = int(self.query.get("first", 0) or 0)
        size = int(self.query.get("max", 100) or 100)
        return items[first : first + size]

    def _user(self, user_id: str) -> User:
        user = self.keycloak.users.get(user_id)
        if user is None:
            raise _Reply(404, {"error": "User not found"})
        return user

    def _group(self, group_id: str) -> Group:
        group = self.keycloak.groups.get(group_id)
        if group is None:
            raise _Reply(404, {"error": "Could not find group by id"})
        return group

    def _group_repr(self, group: Group, *, children: bool) -> dict[str, Any]:
        kc = self.keycloak
        subs = sorted(
            (g for g in kc.groups.values() if g.parent_id == group.id), key=lambda g: g.name
        )
        result: dict[str, Any] = {
            "id": group.id,
            "name": group.name,
            "path": group.path,
            "subGroupCount": len(subs),
            "subGroups": [self._group_repr(g, children=True) for g in subs] if children else [],
            "attributes": {},
            "realmRoles": sorted(kc.group_roles.get(group.id, set())),
            "clientRoles": {},
        }
        if group.parent_id:
            result["parentId"] = group.parent_id
        return result

    def _role_list(self, names: set[str]) -> list[dict[str, Any]]:
        return [self.keycloak.roles[n] for n in sorted(names) if n in self.keycloak.roles]

    def _roles_from_body(self) -> set[str]:
        body = self.json_body()
        if not isinstance(body, list):
            raise _Reply(400, {"error": "invalid_request"})
        names = set()
        for item in body:
            # Keycloak looks roles up by id; a bare name or a wrong id is refused.
            if not isinstance(item, dict) or "id" not in item:
                raise _Reply(400, {"error": "invalid_request"})
            role = self.keycloak.roles.get(item.get("name", ""))
            if role is None or role["id"] != item["id"]:
                raise _Reply(404, {"error": "Role not found"})
            names.add(role["name"])
        return names

    def _admin(self, method: str, rest: str) -> None:
        kc = self.keycloak
        base = f"{kc.url}/admin/realms/{kc.realm}"
        if rest == "" and method == "GET":
            raise _Reply(
                200, {"id": kc.realm, "realm": kc.realm, "enabled": True, **kc.realm_settings}
            )
        if rest == "/users" and method == "GET":
            users = sorted(kc.users.values(), key=lambda u: u.username)
            q = self.query
            exact = q.get("exact") == "true"
            for key, attr in (("username", "username"), ("email", "email")):
                if key in q:
                    want = q[key].lower()
                    users = [
                        u
                        for u in users
                        if (getattr(u, attr) == want if exact else want in getattr(u, attr))
                    ]
            if "search" in q:
                want = q["search"].lower().strip("*")
                users = [
                    u
                    for u in users
                    if want in u.username
                    or want in u.email
                    or want in f"{u.first_name} {u.last_name}".lower()
                ]
            raise _Reply(200, [u.representation() for u in self._page(users)])
        if rest == "/users/count" and method == "GET":
            raise _Reply(200, len(kc.users))
        if rest == "/users" and method == "POST":
            body = self.json_body()
            username = str(body.get("username") or body.get("email") or "").lower()
            if not username:
                raise _Reply(
                    400, {"errorMessage": "error-user-attribute-required", "field": "username"}
                )
            email = str(body.get("email") or "").lower()
            for u in kc.users.values():
                if u.username == username:
                    raise _Reply(409, {"errorMessage": "User exists with same username"})
                if email and u.email == email:
                    raise _Reply(409, {"errorMessage": "User exists with same email"})
            user = kc.add_user(
                username,
                email=email,
                first_name=body.get("firstName", ""),
                last_name=body.get("lastName", ""),
                email_verified=bool(body.get("emailVerified", False)),
                enabled=bool(body.get("enabled", False)),
            )
            user.attributes = body.get("attributes") or {}
            user.required_actions = body.get("requiredActions") or []
            for cred in body.get("credentials") or []:
                if cred.get("type") == "password":
                    user.password = cred.get("value", "")
            raise _Reply(201, None, {"Location": f"{base}/users/{user.id}"})
        m = re.fullmatch(r"/users/([^/]+)(/.*)?", rest)
        if m:
            self._admin_user(method, self._user(m.group(1)), m.group(2) or "")
            return
        if rest == "/roles" and method == "GET":
            raise _Reply(200, self._page([kc.roles[n] for n in sorted(kc.roles)]))
        if rest == "/roles" and method == "POST":
            body = self.json_body()
            if body.get("name") in kc.roles:
                raise _Reply(409, {"errorMessage": f"Role with name {body['name']} already exists"})
            kc._create_role(body)
            raise _Reply(201, None, {"Location": f"{base}/roles/{body['name']}"})
        m = re.fullmatch(r"/roles/([^/]+)(/users|/groups)?", rest)
        if m:
            role = kc.roles.get(m.group(1))
            if role is None:
                raise _Reply(404, {"error": "Could not find role"})
            if m.group(2) == "/users" and method == "GET":
                members = [
                    kc.users[u].representation()
                    for u, r in kc.user_roles.items()
                    if role["name"] in r and u in kc.users
                ]
                raise _Reply(200, self._page(members))
            if m.group(2) is None and method == "GET":
                raise _Reply(200, role)
            if m.group(2) is None and method == "PUT":
                body = self.json_body()
                new = body.get("name", role["name"])
                del kc.roles[role["name"]]
                role.update(name=new, description=body.get("description", role["description"]))
                kc.roles[new] = role
                for names in (*kc.user_roles.values(), *kc.group_roles.values()):
                    if m.group(1) in names:
                        names.discard(m.group(1))
                        names.add(new)
                raise _Reply(204)
            if m.group(2) is None and method == "DELETE":
                del kc.roles[role["name"]]
                for names in (*kc.user_roles.values(), *kc.group_roles.values()):
                    names.discard(role["name"])
                raise _Reply(204)
        if rest == "/groups" and method == "GET":
            groups = sorted(
                (g for g in kc.groups.values() if g.parent_id is None), key=lambda g: g.name
            )
            if "search" in self.query:
                groups = [g for g in groups if self.query["search"].lower() in g.name.lower()]
            raise _Reply(200, [self._group_repr(g, children=False) for g in self._page(groups)])
        if rest == "/groups" and method == "POST":
            self._create_group(None, base)
        m = re.fullmatch(r"/group-by-path/(.+)", rest)
        if m and method == "GET":
            path = "/" + m.group(1).strip("/")
            for group in kc.groups.values():
                if group.path == path:
                    raise _Reply(200, self._group_repr(group, children=True))
            raise _Reply(404, {"error": "Group path does not exist"})
        m = re.fullmatch(r"/groups/([^/]+)(/.*)?", rest)
        if m:
            group = self._group(m.group(1))
            sub = m.group(2) or ""
            if sub == "" and method == "GET":
                raise _Reply(200, self._group_repr(group, children=True))
            if sub == "" and method == "DELETE":
                doomed = {g.id for g in kc.groups.values() if g.path.startswith(group.path + "/")}
                doomed.add(group.id)
                for gid in doomed:
                    del kc.groups[gid]
                for groups in kc.memberships.values():
                    groups.difference_update(doomed)
                raise _Reply(204)
            if sub == "/children" and method == "POST":
                self._create_group(group, base)
            if sub == "/children" and method == "GET":
                subs = sorted(
                    (g for g in kc.groups.values() if g.parent_id == group.id), key=lambda g: g.name
                )
                raise _Reply(200, [self._group_repr(g, children=False) for g in self._page(subs)])
            if sub == "/members" and method == "GET":
                members = [
                    kc.users[u].representation()
                    for u, gs in kc.memberships.items()
                    if group.id in gs
                ]
                raise _Reply(200, self._page(members))
            if sub == "/role-mappings/realm":
                names = kc.group_roles.setdefault(group.id, set())
                if method == "GET":
                    raise _Reply(200, self._role_list(names))
                if method == "POST":
                    names.update(self._roles_from_body())
                    raise _Reply(204)
                if method == "DELETE":
                    names.difference_update(self._roles_from_body())
                    raise _Reply(204)
        if rest == "/clients" and method == "GET":
            clients = [{"id": "c0ffee00-0000-4000-8000-000000000001", "clientId": kc.client_id}]
            if "clientId" in self.query:
                clients = [c for c in clients if c["clientId"] == self.query["clientId"]]
            raise _Reply(200, clients)
        raise _Reply(404, {"error": "Unable to find matching target resource method"})

    def _create_group(self, parent: Group | None, base: str) -> None:
        kc = self.keycloak
        body = self.json_body()
        name = body.get("name", "")
        if not name:
            raise _Reply(400, {"errorMessage": "Group name is missing"})
        path = f"{parent.path if parent else ''}/{name}"
        if any(g.path == path for g in kc.groups.values()):
            raise _Reply(409, {"errorMessage": f"Top level group named '{name}' already exists."})
        group = Group(
            id=str(uuid.uuid4()), name=name, path=path, parent_id=parent.id if parent else None
        )
        kc.groups[group.id] = group
        raise _Reply(201, None, {"Location": f"{base}/groups/{group.id}"})

    def _admin_user(self, method: str, user: User, sub: str) -> None:
        kc = self.keycloak
        if sub == "" and method == "GET":
            raise _Reply(200, user.representation())
        if sub == "" and method == "PUT":
            body = self.json_body()
            username = str(body.get("username") or user.username).lower()
            if username != user.username:
                # Keycloak (user profile): the username is read-only unless the realm
                # allows editing it, and unique.
                if not kc.realm_settings.get("editUsernameAllowed"):
                    raise _Reply(
                        400, {"errorMessage": "error-user-attribute-read-only", "field": "username"}
                    )
                if any(u.username == username for u in kc.users.values()):
                    raise _Reply(409, {"errorMessage": "User exists with same username"})
                user.username = username
            for key, attr in (
                ("email", "email"),
                ("firstName", "first_name"),
                ("lastName", "last_name"),
                ("enabled", "enabled"),
                ("emailVerified", "email_verified"),
                ("attributes", "attributes"),
                ("requiredActions", "required_actions"),
            ):
                if key in body:
                    setattr(user, attr, body[key].lower() if key == "email" else body[key])
            if body.get("enabled") is False:
                for session in kc.active_sessions(user.id):
                    session.active = False
            raise _Reply(204)
        if sub == "" and method == "DELETE":
            # Keycloak removes the user's sessions with the user (their tokens stop working).
            for session in kc.active_sessions(user.id):
                session.active = False
            del kc.users[user.id]
            kc.memberships.pop(user.id, None)
            kc.user_roles.pop(user.id, None)
            raise _Reply(204)
        if sub == "/reset-password" and method == "PUT":
            body = self.json_body()
            user.password = body.get("value", "")
            raise _Reply(204)
        if sub in {"/send-verify-email", "/execute-actions-email"} and method == "PUT":
            kc.emails.append((user.id, sub.strip("/")))
            raise _Reply(204)
        if sub == "/logout" and method == "POST":
            for session in kc.active_sessions(user.id):
                session.active = False
            raise _Reply(204)
        if sub.startswith("/role-mappings/realm"):
            names = kc.user_roles.setdefault(user.id, set())
            if sub == "/role-mappings/realm" and method == "GET":
                raise _Reply(200, self._role_list(names))
            if sub == "/role-mappings/realm/composite" and method == "GET":
                raise _Reply(200, self._role_list(names))
            if sub == "/role-mappings/realm/available" and method == "GET":
                raise _Reply(200, self._role_list(set(kc.roles) - names))
            if sub == "/role-mappings/realm" and method == "POST":
                names.update(self._roles_from_body())
                raise _Reply(204)
            if sub == "/role-mappings/realm" and method == "DELETE":
                names.difference_update(self._roles_from_body())
                raise _Reply(204)
        if sub == "/groups" and method == "GET":
            groups = [kc.groups[g] for g in kc.memberships.get(user.id, set())]
            groups.sort(key=lambda g: g.path)
            raise _Reply(
                200, [{"id": g.id, "name": g.name, "path": g.path} for g in self._page(groups)]
            )
        m = re.fullmatch(r"/groups/([^/]+)", sub)
        if m and method in {"PUT", "DELETE"}:
            group = self._group(m.group(1))
            members = kc.memberships.setdefault(user.id, set())
            if method == "PUT":
                members.add(group.id)
            else:
                members.discard(group.id)
            raise _Reply(204)
        raise _Reply(404, {"error": "Unable to find matching target resource method"})
