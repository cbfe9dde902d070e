"""The token checks without a server: settings and key files refused at start, which algorithm
goes with which key, a public key file, and the dev tokens of `sip-trunks token`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import SecretStr, ValidationError

from service.config import Settings
from service.entrypoints import cli
from service.entrypoints.gateway.auth import Authenticator
from service.entrypoints.gateway.idp_keys import AuthConfigError, load_public_key
from service.entrypoints.gateway.problems import ProblemError
from service.entrypoints.gateway.tokens import ClaimRules, jwt_secret, mint_token
from tests.unit.gateway.idp import ISSUER, TENANT, claims, ec_key, forged, rsa_key

SECRET = "hs256-secret-of-the-idp-unit-tests-0123456789abcdef"
JWKS_URL = "https://idp.example.test/.well-known/jwks.json"


def pem_file(tmp_path: Path, key: Any, name: str = "idp.pem") -> Path:
    path = tmp_path / name
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def settings(**options: Any) -> Settings:
    return Settings(**({"auth_issuer": ISSUER} | options))


async def verdict(authenticator: Authenticator, token: str) -> str:
    """The tenant the token is accepted for, or `refused`."""
    try:
        return (await authenticator.caller(f"Bearer {token}")).tenant
    except ProblemError:
        return "refused"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"auth_jwks_url": JWKS_URL, "auth_public_key_file": "k.pem"}, "not both"),
        ({"auth_jwks_url": "http://idp.example.test/jwks.json"}, "https"),
        ({"auth_jwks_url": "file:///etc/jwks.json"}, "https"),
        ({"auth_jwks_url": "https:///jwks.json"}, "https"),
        ({"auth_issuer": ISSUER}, "no key to check tokens with"),
        ({"auth_audience": "sip-trunks-api"}, "no key to check tokens with"),
        ({"auth_tenant_claim": ""}, "auth_tenant_claim"),
        ({"auth_jwks_timeout_s": 0}, "auth_jwks_timeout_s"),
        ({"auth_jwt_secret": "short-but-not-32-bytes"}, "AUTH_JWT_SECRET must have at least 32"),
    ],
)
def test_settings_that_cannot_work_are_refused_at_start(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**options)


@pytest.mark.parametrize(
    "url",
    [JWKS_URL, "http://127.0.0.1:8099/jwks", "http://localhost/jwks", "http://[::1]:80/jwks"],
)
def test_jwks_urls_are_https_or_loopback_http(url: str) -> None:
    assert Settings(auth_jwks_url=url, auth_issuer=ISSUER).auth_jwks_url == url


def test_public_key_files_give_one_algorithm_each(tmp_path: Path) -> None:
    rsa_public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    assert load_public_key(pem_file(tmp_path, rsa_public)).algorithm == "RS256"
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert load_public_key(pem_file(tmp_path, ec_public)).algorithm == "ES256"


def test_key_files_that_cannot_be_used_are_refused_with_the_reason(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = tmp_path / "private.pem"
    private_pem.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----\n")
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (its point)
    cases = {
        tmp_path / "missing.pem": "No such file",
        garbage: "not a PEM public key",
        private_pem: "holds a private key",
        pem_file(tmp_path, short.public_key(), "short.pem"): "1024 bits",
        pem_file(tmp_path, ec.generate_private_key(ec.SECP384R1()).public_key(), "384.pem"): (
            "EC P-256"
        ),
        pem_file(tmp_path, ed25519.Ed25519PrivateKey.generate().public_key(), "ed.pem"): (
            "Ed25519PublicKey"
        ),
    }
    messages = {}
    for path, reason in cases.items():
        with pytest.raises(AuthConfigError, match=reason) as refused:
            Authenticator.from_settings(settings(auth_public_key_file=path))
        messages[path] = str(refused.value)
        assert str(path) in messages[path]
    key_lines = private_pem.read_text().splitlines()[1:-1]
    assert not any(line in messages[private_pem] for line in key_lines)  # never the content


async def test_a_public_key_file_checks_its_own_algorithm_only(tmp_path: Path) -> None:
    key = rsa_key("any")
    path = tmp_path / "idp.pem"
    path.write_bytes(key.public_pem())
    payload = claims()
    for secret in (SECRET, None):  # with and without HS256 besides
        options = {"auth_public_key_file": path, "auth_jwt_secret": secret and SecretStr(secret)}
        authenticator = Authenticator.from_settings(settings(**options))
        assert await verdict(authenticator, key.sign(payload)) == TENANT
        attacks = [
            forged({"alg": "HS256"}, payload, key.public_pem()),
            forged({"alg": "none"}, payload, None),
            ec_key("ec").sign(payload),  # ES256, with a key of its own
            jwt.encode(payload, SECRET + "x", algorithm="HS384"),
        ]
        for attack in attacks:
            assert await verdict(authenticator, attack) == "refused"


def test_the_algorithms_follow_from_the_keys_configured(tmp_path: Path) -> None:
    ec_pem = pem_file(tmp_path, ec.generate_private_key(ec.SECP256R1()).public_key())

    def algorithms(**options: Any) -> list[str]:
        options.setdefault("data_dir", tmp_path)
        return Authenticator.from_settings(Settings(**options)).algorithms

    secret = SecretStr(SECRET)
    assert algorithms() == ["HS256"]  # the dev secret
    assert algorithms(auth_public_key_file=ec_pem) == ["ES256"]
    assert algorithms(auth_public_key_file=ec_pem, auth_jwt_secret=secret) == ["HS256", "ES256"]
    assert algorithms(auth_jwks_url=JWKS_URL) == ["RS256", "ES256"]
    assert algorithms(auth_jwks_url=JWKS_URL, auth_jwt_secret=secret) == [
        "HS256",
        "RS256",
        "ES256",
    ]


async def test_the_dev_secret_is_not_taken_once_an_identity_provider_is_set(
    tmp_path: Path,
) -> None:
    dev = Settings(data_dir=tmp_path)
    dev_secret = jwt_secret(dev)
    assert dev_secret is not None
    dev_token = mint_token(dev_secret, tenant=TENANT)
    assert await verdict(Authenticator.from_settings(dev), dev_token) == TENANT
    with_idp = Settings(data_dir=tmp_path, auth_jwks_url=JWKS_URL)
    assert jwt_secret(with_idp) is None
    assert await verdict(Authenticator.from_settings(with_idp), dev_token) == "refused"


async def test_sip_trunks_token_mints_what_the_gateway_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment = {
        "DATA_DIR": str(tmp_path),
        "AUTH_JWT_SECRET": SECRET,
        "AUTH_ISSUER": ISSUER,
        "AUTH_AUDIENCE": "sip-trunks-api",
        "AUTH_TENANT_CLAIM": "org",
        "AUTH_SCOPE_CLAIM": "scp",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["token", "--tenant", "acme", "--read-only"]) == 0
    token = capsys.readouterr().out.strip()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    caller = await Authenticator.from_settings(Settings()).caller(f"Bearer {token}")
    assert (caller.tenant, caller.scopes) == ("acme", {"sip-trunks:read"})

    monkeypatch.delenv("AUTH_JWT_SECRET")
    monkeypatch.setenv("AUTH_JWKS_URL", JWKS_URL)
    assert cli.main(["token"]) == 2  # the gateway would refuse an HS256 token
    assert "AUTH_JWT_SECRET" in capsys.readouterr().err


def test_the_gateway_does_not_start_with_a_bad_key_file(tmp_path: Path) -> None:
    bad = tmp_path / "idp.pem"
    bad.write_text("not a key")
    env = {**os.environ, "DATA_DIR": str(tmp_path), "AUTH_PUBLIC_KEY_FILE": str(bad)}
    env |= {"GATEWAY_PORT": "1", "AUTH_ISSUER": ISSUER}  # it must fail before binding a port
    run = subprocess.run(
        [sys.executable, "-m", "service.entrypoints.cli", "gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert f"AUTH_PUBLIC_KEY_FILE {bad}: not a PEM public key" in run.stderr


async def test_iss_and_aud_are_checked_on_hs256_tokens_too() -> None:
    rules = ClaimRules(issuer=ISSUER, audience="sip-trunks-api")
    authenticator = Authenticator(rules, secret=SECRET)
    assert await verdict(authenticator, mint_token(SECRET, tenant="t", rules=rules)) == "t"
    assert await verdict(authenticator, mint_token(SECRET, tenant="t")) == "refused"
    # Without AUTH_AUDIENCE an `aud` is not checked, as before.
    lenient = Authenticator(ClaimRules(), secret=SECRET)
    assert await verdict(lenient, mint_token(SECRET, tenant="t", rules=rules)) == "t"


async def test_the_leeway_allows_for_a_clock_that_runs_ahead_and_no_more() -> None:
    now = int(time.time())
    ahead = jwt.encode(claims(iat=now + 5, nbf=now + 5), SECRET, algorithm="HS256")
    just_expired = jwt.encode(claims(exp=now - 5), SECRET, algorithm="HS256")
    long_expired = jwt.encode(claims(exp=now - 60), SECRET, algorithm="HS256")
    strict = Authenticator(ClaimRules(), secret=SECRET)
    lenient = Authenticator(ClaimRules(leeway_s=30), secret=SECRET)
    assert [await verdict(strict, t) for t in (ahead, just_expired)] == ["refused", "refused"]
    assert [await verdict(lenient, t) for t in (ahead, just_expired)] == [TENANT, TENANT]
    assert await verdict(lenient, long_expired) == "refused"
