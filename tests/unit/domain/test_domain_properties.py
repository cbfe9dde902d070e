"""Property tests: the validators are total, valid input is accepted and normalised idempotently,
and updates keep their promises about versions and passwords."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.domain import (
    MASKED_PASSWORD,
    Reason,
    Rejected,
    TrunkFields,
    create_trunk,
    update_trunk,
    validate_trunk_body,
)
from service.domain.validation import (
    INVALID,
    READ_ONLY_FIELDS,
    WRITABLE_FIELDS,
    check_advanced,
    check_authentication,
    check_gateway,
    check_gateways,
    check_ip_or_domain,
    check_name,
    check_port,
)
from tests.unit.domain.domain_builders import LATER, NOW, TENANT, json_values

_ID = UUID(int=1)
T = TypeVar("T")
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies: arbitrary JSON shaped a little like our bodies ------------------------------

field_names = st.sampled_from([*WRITABLE_FIELDS, *READ_ONLY_FIELDS]) | st.text(max_size=6)
gateway_like = st.dictionaries(st.sampled_from(["ipOrDomain", "port", "name", "x"]), json_values)
advanced_like = st.dictionaries(
    st.sampled_from(["transport", "numbers", "mediaEncryption", "destinationCountry", "headers"]),
    json_values,
)
bodies_like = st.dictionaries(
    field_names,
    json_values | st.lists(gateway_like, max_size=3) | advanced_like,
    max_size=6,
)
CHECKS = [
    check_name,
    check_gateways,
    check_gateway,
    check_ip_or_domain,
    check_port,
    check_authentication,
    check_advanced,
]

# --- strategies: valid values ---------------------------------------------------------------


def _usable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (
        address.is_loopback
        or address.is_unspecified
        or address.is_link_local
        or address.is_multicast
        or address in ipaddress.IPv4Network("240.0.0.0/4")
    )


def _embeds_no_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Not 6to4 nor Teredo: those carry an IPv4 address, judged by the IPv4 rules."""
    assert isinstance(address, ipaddress.IPv6Address)
    return address.sixtofour is None and address.teredo is None


def _address_key(gateway: dict[str, Any]) -> tuple[str, int]:
    host = str(gateway["ipOrDomain"]).lower().removesuffix(".")
    host = str(ipaddress.ip_address(host)) if ":" in host else host
    return host, gateway.get("port", 5060)


label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
domains = st.builds(
    lambda labels, tld, case, dot: case(".".join([*labels, tld])) + dot,
    st.lists(label, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
    st.sampled_from([str.lower, str.upper, str.title]),
    st.sampled_from(["", "."]),
)
hosts = (
    domains
    | st.ip_addresses(v=4).filter(_usable).map(str)
    | st.ip_addresses(v=6, network="2000::/3")
    .filter(_embeds_no_ipv4)
    .map(lambda a: a.exploded.upper())
)
printable = st.characters(categories=["L", "N", "P", "S"])
gateways = st.lists(
    st.fixed_dictionaries(
        {"ipOrDomain": hosts, "name": st.text(printable, min_size=1, max_size=64)},
        optional={"port": st.integers(1, 65535)},
    ),
    min_size=1,
    max_size=10,
    unique_by=(_address_key, lambda g: str(g["name"]).casefold()),
)
numbers = st.lists(st.from_regex(r"\+[0-9]{1,15}", fullmatch=True), max_size=50, unique=True)
headers = st.dictionaries(
    st.from_regex(r"[A-Za-z0-9.!%*_+`'~-]{1,40}", fullmatch=True),
    st.text(st.characters(exclude_categories=["Cc", "Cs"]) | st.just("\t"), max_size=60),
    max_size=5,
).filter(lambda h: len({k.casefold() for k in h}) == len(h))
advanced = st.fixed_dictionaries(
    {},
    optional={
        "transport": st.sampled_from(["auto", "udp", "tcp", "tls"]),
        "numbers": numbers,
        "mediaEncryption": st.sampled_from(["disable", "allow", "require"]),
        "destinationCountry": st.sampled_from(["DE", "US", "GB", "FR", "JP", "BR", "ZA"]),
        "headers": headers,
    },
)
passwords = st.from_regex(r"[\x20-\x7e]{8,128}", fullmatch=True).filter(lambda p: p.strip("*"))
credentials = st.fixed_dictionaries(
    {"username": st.from_regex(r"[A-Za-z0-9._~+-]{1,64}", fullmatch=True), "password": passwords}
)
valid_bodies = st.fixed_dictionaries(
    {"name": st.text(printable, min_size=1, max_size=100), "gateways": gateways},
    optional={"authentication": st.none() | credentials, "advanced": advanced},
)


def document(fields: TrunkFields) -> dict[str, Any]:
    auth = fields.authentication
    return {
        "name": fields.name,
        "gateways": [
            {"ipOrDomain": g.ip_or_domain, "port": g.port, "name": g.name} for g in fields.gateways
        ],
        "authentication": auth and {"username": auth.username, "password": auth.password},
        "advanced": fields.advanced,
    }


def attempt(call: Callable[[], T]) -> T | Rejected:
    try:
        return call()
    except Rejected as refused:
        return refused


# --- properties -----------------------------------------------------------------------------


@FAST
@given(value=json_values | bodies_like | st.lists(gateway_like, max_size=3) | advanced_like)
def test_checks_are_total_and_invalid_means_errors(value: object) -> None:
    for check in CHECKS:
        errors: list[Any] = []
        result = check(value, "/x", errors)
        assert (result is INVALID) == bool(errors), check.__name__


@FAST
@given(value=json_values | bodies_like)
def test_a_body_is_either_valid_or_refused_with_errors(value: object) -> None:
    outcome = attempt(lambda: validate_trunk_body(value))
    assert isinstance(outcome, TrunkFields) or outcome.errors


@FAST
@given(body=valid_bodies)
def test_valid_bodies_are_accepted_and_normalisation_is_idempotent(body: dict[str, Any]) -> None:
    fields = validate_trunk_body(body)
    assert len(fields.gateways) == len(body["gateways"])
    assert validate_trunk_body(document(fields)) == fields


@FAST
@given(body=valid_bodies, changes=st.just({}) | bodies_like | valid_bodies)
def test_an_update_changes_something_or_keeps_the_version(
    body: dict[str, Any], changes: dict[str, Any]
) -> None:
    trunk = create_trunk(None, trunk_id=_ID, tenant_id=TENANT, fields=body, now=NOW).trunk
    change = attempt(
        lambda: update_trunk(
            trunk, tenant_id=TENANT, changes=changes, expected_version=1, now=LATER
        )
    )
    if isinstance(change, Rejected):
        assert change.reason is Reason.VALIDATION_FAILED
        assert change.errors
        return
    if change.changed_fields:
        assert (change.trunk.version, change.trunk.updated_at) == (2, LATER)
    else:
        assert change.trunk is trunk
    if not changes:
        assert change.trunk is trunk


@FAST
@given(body=valid_bodies)
def test_resending_what_a_client_sees_changes_nothing(body: dict[str, Any]) -> None:
    change = create_trunk(None, trunk_id=_ID, tenant_id=TENANT, fields=body, now=NOW)
    seen = document(validate_trunk_body(body))
    if seen["authentication"]:
        seen["authentication"]["password"] = MASKED_PASSWORD
    again = update_trunk(
        change.trunk, tenant_id=TENANT, changes=seen, expected_version=1, now=LATER
    )
    assert again.trunk is change.trunk
    assert again.changed_fields == ()


@FAST
@given(
    body=st.builds(lambda body, auth: {**body, "authentication": auth}, valid_bodies, credentials),
    username=st.none() | st.from_regex(r"[A-Za-z0-9._~+-]{1,64}", fullmatch=True),
    other=st.fixed_dictionaries({}, optional={"name": st.text(max_size=3), "advanced": advanced}),
)
def test_a_masked_password_never_changes_the_stored_one(
    body: dict[str, Any], username: str | None, other: dict[str, Any]
) -> None:
    trunk = create_trunk(None, trunk_id=_ID, tenant_id=TENANT, fields=body, now=NOW).trunk
    auth = {"password": MASKED_PASSWORD} | ({"username": username} if username else {})
    changes = {**other, "authentication": auth}
    change = attempt(
        lambda: update_trunk(
            trunk, tenant_id=TENANT, changes=changes, expected_version=None, now=LATER
        )
    )
    if isinstance(change, Rejected):
        assert change.reason is Reason.VALIDATION_FAILED
        return
    assert change.trunk.authentication is not None
    assert change.trunk.authentication.password == body["authentication"]["password"]
    assert "authentication.password" not in change.changed_fields
