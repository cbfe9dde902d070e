"""The LiveKit provider: an outbound SIP trunk at LiveKit for each of ours (livekit-api).

Mapping (ARCHITECTURE.md): first gateway → `address` (`host:port`), `name`, credentials,
`advanced.transport/numbers/headers/destinationCountry/mediaEncryption`, and `metadata` = JSON
with our trunk id, tenant and `owner` (LIVEKIT_OWNER: this deployment; `reconcile` only ever
touches trunks whose owner is ours). LiveKit needs a caller
number: `LIVEKIT_DEFAULT_NUMBER` stands in when `advanced.numbers` is empty. Updates replace
the whole trunk; deleting an unknown id succeeds at LiveKit.

Failures: each call runs under a hard timeout (the client ignores its own), retried with
backoff on connection errors, timeouts, 5xx and 401/403/408/429, then refused as
`provider_unavailable`, and for LIVEKIT_BREAKER_S after that every call fails fast (a circuit
breaker: a hung LiveKit must not hold a batch of commands for minutes); another 4xx
(LiveKit's validation) is `provider_rejected` with LiveKit's message.

Calls are sent with a SIP-admin token signed here every few minutes, not per call: the client,
given a key and secret, signs a fresh token for every call, about half of its CPU per call
(~150 of ~330 µs, profiled), and a batch makes one call per command.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp
from livekit import api
from livekit.api.sip_service import SipService

from service.domain.errors import Reason, Rejected
from service.domain.model import SipTrunk
from service.logs import get_logger
from service.service_layer.ports import ListedTrunk

__all__ = ["LiveKitProvider", "NotAtLiveKit", "held", "ours", "outbound_trunk", "same"]

log = get_logger(__name__)

T = TypeVar("T")
_BACKOFF_S = (0.2, 0.5, 1.0)
# 4xx answers that say "not now" rather than "not this trunk": unavailable, retried.
_TRANSIENT_4XX = frozenset({401, 403, 408, 429})
# A token lives 10 minutes and is replaced after 5: never sent close to its expiry.
_TOKEN_TTL = timedelta(minutes=10)
_TOKEN_RENEW_S = 300.0


class NotAtLiveKit(Rejected):
    """LiveKit does not know the trunk id (deleted there by hand, or never made)."""


_TRANSPORTS = {
    "auto": api.SIPTransport.SIP_TRANSPORT_AUTO,
    "udp": api.SIPTransport.SIP_TRANSPORT_UDP,
    "tcp": api.SIPTransport.SIP_TRANSPORT_TCP,
    "tls": api.SIPTransport.SIP_TRANSPORT_TLS,
}
_ENCRYPTION = {
    "disable": api.SIPMediaEncryption.SIP_MEDIA_ENCRYPT_DISABLE,
    "allow": api.SIPMediaEncryption.SIP_MEDIA_ENCRYPT_ALLOW,
    "require": api.SIPMediaEncryption.SIP_MEDIA_ENCRYPT_REQUIRE,
}


def outbound_trunk(trunk: SipTrunk, default_number: str, owner: str) -> api.SIPOutboundTrunkInfo:
    """Our trunk as LiveKit's outbound trunk (without its id)."""
    gateway = trunk.gateways[0]
    host = gateway.ip_or_domain
    if _is_ipv6(host):
        host = f"[{host}]"
    advanced = trunk.advanced
    auth = trunk.authentication
    return api.SIPOutboundTrunkInfo(
        name=trunk.name,
        address=f"{host}:{gateway.port}",
        numbers=list(advanced.get("numbers") or [default_number]),
        auth_username=auth.username if auth else "",
        auth_password=auth.password if auth else "",
        transport=_TRANSPORTS[advanced.get("transport", "auto")],
        headers=dict(advanced.get("headers", {})),
        destination_country=advanced.get("destinationCountry", ""),
        media_encryption=_ENCRYPTION[advanced.get("mediaEncryption", "disable")],
        metadata=json.dumps(
            {"owner": owner, "trunkId": str(trunk.id), "tenantId": trunk.tenant_id},
            sort_keys=True,
        ),
    )


def ours(info: api.SIPOutboundTrunkInfo, owner: str) -> str | None:
    """The id of our trunk a LiveKit trunk was made for; None if this deployment did not make it."""
    try:
        meta = json.loads(info.metadata)
    except ValueError:
        return None
    if isinstance(meta, dict) and meta.get("owner") == owner and "trunkId" in meta:
        return str(meta["trunkId"])
    return None


def _is_ipv6(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False


# The fields this service sets: what `reconcile` compares to find drift.
COMPARED = (
    "name",
    "address",
    "numbers",
    "auth_username",
    "auth_password",
    "transport",
    "headers",
    "destination_country",
    "media_encryption",
    "metadata",
)


def same(a: api.SIPOutboundTrunkInfo, b: api.SIPOutboundTrunkInfo) -> bool:
    return held(a) == held(b)


def held(info: api.SIPOutboundTrunkInfo) -> dict[str, object]:
    """The fields this service sets, as plain values: equal when no field differs."""
    return {f: _plain(getattr(info, f)) for f in COMPARED}


def _plain(value: Any) -> Any:
    if isinstance(value, str | int):
        return value
    try:
        return dict(value)
    except (TypeError, ValueError):
        return list(value)


class LiveKitProvider:
    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        *,
        timeout_s: float,
        retries: int,
        default_number: str,
        owner: str,
        breaker_s: float = 5.0,
    ) -> None:
        self._url, self._key, self._secret = url, api_key, api_secret
        self.owner = owner
        self._timeout_s = timeout_s
        self._retries = retries
        self.default_number = default_number
        # Made in the running loop, on first use; the client again with each new token.
        self._session: aiohttp.ClientSession | None = None
        self._client: api.LiveKitAPI | None = None
        self._token_due = 0.0  # when (loop time) the client's token is to be replaced
        # The circuit breaker: after LiveKit failed a command, the next ones fail fast for
        # `breaker_s` instead of each waiting out its tries (a hung LiveKit must not hold a
        # whole batch of commands for minutes).
        self._breaker_s = breaker_s
        self._failing_until = 0.0

    async def create(self, trunk: SipTrunk) -> str:
        request = api.CreateSIPOutboundTrunkRequest(trunk=self.to_info(trunk))
        created = await self._call("create", lambda sip: sip.create_outbound_trunk(request))
        return str(created.sip_trunk_id)

    async def update(self, before: SipTrunk, after: SipTrunk) -> str | None:
        """Replace the LiveKit trunk when something it holds changed; else call nobody."""
        if before.provider_id is None:
            return await self.create(after)
        if same(self.to_info(before), self.to_info(after)):
            return before.provider_id
        return await self.replace(after, before.provider_id)

    async def replace(self, trunk: SipTrunk, provider_id: str) -> str:
        info = self.to_info(trunk)
        try:
            await self._call("update", lambda sip: sip.update_outbound_trunk(provider_id, info))
        except NotAtLiveKit:
            return await self.create(trunk)  # gone at LiveKit (deleted by hand): make it anew
        return provider_id

    async def delete(self, trunk: SipTrunk) -> None:
        if trunk.provider_id:
            await self.delete_id(trunk.provider_id)

    async def delete_id(self, provider_id: str) -> None:
        request = api.DeleteSIPTrunkRequest(sip_trunk_id=provider_id)
        await self._call("delete", lambda sip: sip.delete_trunk(request))

    async def list_trunks(self) -> list[ListedTrunk]:
        request = api.ListSIPOutboundTrunkRequest()
        response = await self._call("list", lambda sip: sip.list_outbound_trunk(request))
        return [
            ListedTrunk(str(info.sip_trunk_id), ours(info, self.owner), held(info))
            for info in response.items
        ]

    def in_step(self, trunk: SipTrunk, listed: ListedTrunk) -> bool:
        return held(self.to_info(trunk)) == listed.held

    def to_info(self, trunk: SipTrunk) -> api.SIPOutboundTrunkInfo:
        return outbound_trunk(trunk, self.default_number, self.owner)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()  # the client's (it was handed this session)
            self._session = self._client = None

    def _sip(self, now: float) -> SipService:
        """The SIP API, with a token of the SIP admin grant (what its calls ask for)."""
        if self._client is None or now >= self._token_due:
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            token = (
                api.AccessToken(self._key, self._secret)
                .with_grants(api.VideoGrants())
                .with_sip_grants(api.SIPGrants(admin=True))
                .with_ttl(_TOKEN_TTL)
                .to_jwt()
            )
            self._client = api.LiveKitAPI.with_token(token, self._url, session=self._session)
            self._token_due = now + _TOKEN_RENEW_S
        return self._client.sip

    async def _call(self, what: str, call: Callable[[Any], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        if loop.time() < self._failing_until:
            raise Rejected(Reason.PROVIDER_UNAVAILABLE, "LiveKit failed moments ago: not retried")
        problem = ""
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S)) - 1])
            try:
                async with asyncio.timeout(self._timeout_s):
                    result = await call(self._sip(loop.time()))
                self._failing_until = 0.0
                return result
            except api.TwirpError as exc:
                if exc.code == "not_found":
                    raise NotAtLiveKit(
                        Reason.PROVIDER_REJECTED, f"LiveKit: {exc.message}"
                    ) from None
                if exc.status < 500 and exc.status not in _TRANSIENT_4XX:
                    raise Rejected(Reason.PROVIDER_REJECTED, f"LiveKit: {exc.message}") from None
                problem = f"LiveKit answered {exc.status} {exc.code}"
            except (TimeoutError, aiohttp.ClientError) as exc:
                problem = f"LiveKit unreachable ({type(exc).__name__})"
            log.warning("livekit.call_failed", call=what, attempt=attempt + 1, problem=problem)
        self._failing_until = loop.time() + self._breaker_s
        raise Rejected(Reason.PROVIDER_UNAVAILABLE, f"{problem}, after {self._retries + 1} tries")
