"""A stand-in identity provider: signing keys, tokens, and its JWKS served on the loopback.

Imported as `tests.unit.gateway.idp`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from service.entrypoints.gateway.tokens import READ_SCOPE, WRITE_SCOPE

ISSUER = "https://idp.example.test/"
TENANT = "tenant-a"

# Generating RSA keys takes a while: the tests share these (a kid is given per use).
_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_RSA_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class SigningKey:
    """One key of the IdP: it signs tokens naming `kid`, and publishes itself as a JWK."""

    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    kid: str

    @property
    def algorithm(self) -> str:
        return "RS256" if isinstance(self.private, rsa.RSAPrivateKey) else "ES256"

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        jwk = (
            RSAAlgorithm.to_jwk(public, as_dict=True)
            if isinstance(public, rsa.RSAPublicKey)
            else ECAlgorithm.to_jwk(public, as_dict=True)
        )
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": kid or self.kid}
        )


def rsa_key(kid: str, *, second: bool = False) -> SigningKey:
    return SigningKey(_RSA_2 if second else _RSA, kid)


def ec_key(kid: str) -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), kid)


def claims(**overrides: Any) -> dict[str, Any]:
    """An IdP's claims for tenant-a with both scopes; a None override leaves the claim out."""
    base = {
        "sub": "alice",
        "tenant": TENANT,
        "scope": f"{READ_SCOPE} {WRITE_SCOPE}",
        "iss": ISSUER,
        "exp": int(time.time()) + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], hmac_key: bytes | None) -> str:
    """A token as an attacker writes it: any header; HS256 with `hmac_key`, or no signature."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if hmac_key is None:
        return signing_input + "."
    mac = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


@dataclass
class JwksServer:
    """The IdP's JWKS endpoint on 127.0.0.1: publishes `keys`, counts the fetches."""

    keys: list[SigningKey] = field(default_factory=list)
    body: bytes | None = None  # served instead of the JWKS when set
    fetches: int = 0
    port: int = 0
    # Cleared: requests are held until it is set again (a stalled endpoint), and `holding` set.
    answering: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.answering.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def document(self) -> bytes:
        if self.body is not None:
            return self.body
        return json.dumps({"keys": [key.jwk() for key in self.keys]}).encode()


@contextmanager
def serving(jwks: JwksServer) -> Iterator[JwksServer]:
    """Serves `jwks` on a free loopback port (or the one it had) until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            jwks.fetches += 1
            if not jwks.answering.is_set():
                jwks.holding.set()
                jwks.answering.wait(10)
            body = jwks.document()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", jwks.port), Handler)
    jwks.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield jwks
    finally:
        jwks.answering.set()
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """A JWKS URL whose server takes the connection and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # connections wait in the backlog, unanswered
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/jwks.json"
