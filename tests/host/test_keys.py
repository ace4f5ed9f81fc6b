"""One secret, every key derived from it: the demo keeps a generated secret, each use has
its own key, a rotation loses nothing sealed, and what was sealed before still opens."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from kabinet.keys import Keys, hkdf
from kabinet.settings import load

pytestmark = pytest.mark.smoke


def keys(tmp_path: Path, text: str = "") -> Keys:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "settings.toml"
    path.write_text(f'[host]\nvar_dir = "var"\n{text}')
    settings = load(path, env={})
    return Keys(settings.host, settings.var_dir)


def test_without_a_secret_one_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = keys(tmp_path)
    csrf = first.derive("csrf")
    kept = tmp_path / "var" / "secret.key"
    assert kept.exists()
    assert (kept.stat().st_mode & 0o777) == 0o600
    assert len(kept.read_text().strip()) >= 40
    # Another process of the same installation derives the same keys.
    assert keys(tmp_path).derive("csrf") == csrf


def test_processes_starting_at_once_share_one_secret(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text('[host]\nvar_dir = "var"\n')
    code = (
        "import sys; from kabinet.keys import Keys; from kabinet.settings import load;"
        "s = load(sys.argv[1], env={}); print(Keys(s.host, s.var_dir).derive('x').hex())"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "settings.toml")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert len(outputs) == 1
    assert len(next(iter(outputs))) == 64
    assert not [p for p in (tmp_path / "var").iterdir() if p.name != "secret.key"]


def test_each_purpose_has_its_own_key_and_none_is_the_secret(tmp_path: Path) -> None:
    k = keys(tmp_path, 'secret_key = "one-secret"\n')
    derived = {p: k.derive(p) for p in ("csrf", "identity", "notifications", "keycloak.tokens")}
    assert len(set(derived.values())) == 4
    assert all(len(v) == 32 and b"one-secret" not in v for v in derived.values())
    assert derived["csrf"] == hkdf(b"one-secret", "csrf")
    assert keys(tmp_path, 'secret_key = "another"\n').derive("csrf") != derived["csrf"]


def test_a_rotation_keeps_what_was_sealed_and_reseals_it_under_the_new_secret(
    tmp_path: Path,
) -> None:
    old = keys(tmp_path / "a", 'secret_key = "old-secret"\n').sealer("notifications")
    token = old.seal(b"smtp-password")
    rotated = keys(
        tmp_path / "b", 'secret_key = "new-secret"\nprevious_secret_keys = ["old-secret"]\n'
    ).sealer("notifications")
    assert rotated.open(token) == b"smtp-password"
    fresh = rotated.reseal(token)
    assert fresh is not None
    only_new = keys(tmp_path / "c", 'secret_key = "new-secret"\n').sealer("notifications")
    assert only_new.open(fresh) == b"smtp-password"
    assert only_new.open(token) is None  # without previous_secret_keys the old one is closed
    assert only_new.open("not a token") is None


def test_what_notifications_and_keycloak_sealed_before_still_opens(tmp_path: Path) -> None:
    # Before host.keys, notifications sealed with SHA-256("kabinet.notifications:" + secret)
    # (a constant when no secret was set) and Keycloak with its own SHA-256 of the secret.
    k = keys(tmp_path, 'secret_key = "s"\n')
    before_n = hashlib.sha256(b"kabinet.notifications:s").digest()
    before_k = hashlib.sha256(b"kabinet.keycloak.tokens:s").digest()
    old_n = Fernet(base64.urlsafe_b64encode(before_n)).encrypt(b'{"sms_api_id": "x"}').decode()
    old_k = Fernet(base64.urlsafe_b64encode(before_k)).encrypt(b"refresh").decode()
    assert k.sealer("notifications", legacy=[before_n]).open(old_n) == b'{"sms_api_id": "x"}'
    assert k.sealer("keycloak.tokens", legacy=[before_k]).open(old_k) == b"refresh"
    # New seals use the derived key, which the old one cannot open.
    new = k.sealer("notifications", legacy=[before_n]).seal(b"v")
    with pytest.raises(Exception):  # noqa: B017, PT011 - any Fernet refusal
        Fernet(base64.urlsafe_b64encode(before_n)).decrypt(new.encode())
