"""The field rules of CONTRACT.md §1, each stated once.

Every `check_*` function takes a raw JSON-decoded value (anything `json.loads` can return), the
RFC 6901 pointer of that value in the request body, and a list to collect errors into. It never
raises: it returns the normalised value, or `INVALID` after appending at least one `FieldViolation`.
Messages never quote the value (it may be a password).

Decisions where the contract is silent:
- `name` and gateway `name` are trimmed (`str.strip`) and stored trimmed. A trunk `name` may hold
  any character but control characters and lone surrogates (they cannot be encoded as UTF-8
  downstream); a gateway `name` only characters for which `str.isprintable()` holds.
- `ipOrDomain`: IPv6 without brackets or zone index; a name whose last label is all digits is
  refused as a bad IPv4 address. Refused besides the contract's loopback, unspecified, link-local
  and multicast addresses: IPv4 240.0.0.0/4 (reserved, with the broadcast 255.255.255.255: no SIP
  gateway lives there), and an IPv6 address that carries a refused IPv4 address by a standard
  mapping (traffic to it reaches that IPv4 address): IPv4-mapped `::ffff:0:0/96`,
  IPv4-compatible `::/96`, 6to4 `2002::/16`, Teredo's client address (`2001::/32`), and NAT64
  `64:ff9b::/96` and `64:ff9b:1::/48`, both read with the IPv4 address in the last 32 bits (the
  /96 layout of RFC 6052, the only one of the well-known prefix; a local-use prefix's length is
  the network's choice, and other layouts would read a public address as 0.0.0.0).
- `port`: absent means 5060; `null` is refused like any other non-integer.
- `authentication.password` made only of `*` is refused wherever a password is set (create,
  update, system trunk declaration): on update the mask `********` is resolved to the stored
  password before validation, so any other all-`*` value is a mis-masked echo, not a password.
- `advanced: null` means `{}`; `advanced` keeps only the keys that were set (no defaults are
  filled in), in the contract's key order. `numbers` may be empty but must not repeat a number.
- `destinationCountry`: an upper-case, currently assigned ISO 3166-1 alpha-2 code (list below).
- `headers`: names are RFC 3261 tokens, unique case-insensitively (SIP header names are
  case-insensitive); values refuse CR, LF and every other control character except TAB; at most
  50 headers (a bound the contract does not state: a trunk must fit in one Kafka message).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal, TypeAlias, TypeVar

from sip_trunk_contracts import limits

from service.domain.errors import FieldViolation, ValidationFailed
from service.domain.model import Credentials, Gateway

__all__ = [
    "DEFAULT_PORT",
    "INVALID",
    "READ_ONLY_FIELDS",
    "WRITABLE_FIELDS",
    "Check",
    "Invalid",
    "TrunkFields",
    "check_advanced",
    "check_authentication",
    "check_body_keys",
    "check_gateway",
    "check_gateways",
    "check_ip_or_domain",
    "check_name",
    "check_patch_keys",
    "check_port",
    "check_trunk_fields",
    "child",
    "ensure_valid",
    "validate_trunk_body",
]

T = TypeVar("T")


class _Invalid(Enum):
    INVALID = "invalid"


INVALID: Final = _Invalid.INVALID
Invalid: TypeAlias = Literal[_Invalid.INVALID]
Errors: TypeAlias = list[FieldViolation]
Check: TypeAlias = Callable[[object, str, Errors], "T | Invalid"]

WRITABLE_FIELDS: Final = ("name", "gateways", "authentication", "advanced")
READ_ONLY_FIELDS: Final = ("id", "isSystem", "providerId", "createdAt", "updatedAt")
# The numbers are the contract's (sip_trunk_contracts.limits), shared with the REST gateway.
DEFAULT_PORT: Final = limits.DEFAULT_PORT
MAX_GATEWAYS: Final = limits.MAX_GATEWAYS
MAX_NUMBERS: Final = limits.MAX_NUMBERS
MAX_HEADERS: Final = limits.MAX_HEADERS  # not in the contract: bounds a trunk's size


@dataclass(frozen=True, slots=True)
class TrunkFields:
    """The writable fields of a trunk, validated and normalised."""

    name: str
    gateways: tuple[Gateway, ...]
    authentication: Credentials | None
    advanced: dict[str, object]


# --- helpers -------------------------------------------------------------------------------


def child(at: str, key: str | int) -> str:
    """The pointer of `key` below `at`, escaped per RFC 6901 (and safe to encode as UTF-8)."""
    token = str(key).replace("~", "~0").replace("/", "~1")
    return f"{at}/{token.encode('utf-8', 'backslashreplace').decode('utf-8')}"


def _fail(errors: Errors, at: str, message: str) -> Invalid:
    errors.append(FieldViolation(at, message))
    return INVALID


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return "an object" if isinstance(value, Mapping) else type(value).__name__


# Unicode's control (Cc) and surrogate (Cs) characters: both ranges are fixed by Unicode's
# stability policy, so one character class finds them without a per-character Python loop.
_CONTROL = "\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff"
_CONTROL_OR_TAB = re.compile(f"[\t{_CONTROL}]")
_CONTROL_NOT_TAB = re.compile(f"[{_CONTROL}]")
# `\s` of a str pattern is `str.isspace()` (both are Py_UNICODE_ISSPACE).
_WHITESPACE = re.compile(r"\s")


def _has_control(text: str, *, tab_allowed: bool = False) -> bool:
    return (_CONTROL_NOT_TAB if tab_allowed else _CONTROL_OR_TAB).search(text) is not None


def _string_rule(rule: Callable[[str, str, Errors], T | Invalid]) -> Check[T]:
    """Turn a rule over strings into a check that first refuses non-strings."""

    @functools.wraps(rule)
    def check(value: object, at: str, errors: Errors) -> T | Invalid:
        if not isinstance(value, str):
            return _fail(errors, at, f"must be a string, not {_json_type(value)}")
        return rule(value, at, errors)

    return check


def _check_keys(
    obj: Mapping[str, object],
    at: str,
    allowed: Collection[str],
    errors: Errors,
    read_only: Collection[str] = (),
) -> bool:
    before = len(errors)
    for key in obj:
        if key not in allowed:
            message = "is read-only" if key in read_only else "is not a known field"
            errors.append(FieldViolation(child(at, key), message))
    return len(errors) == before


def _required(
    obj: Mapping[str, object], key: str, at: str, errors: Errors, check: Check[T]
) -> T | Invalid:
    if key not in obj:
        return _fail(errors, child(at, key), "is required")
    return check(obj[key], child(at, key), errors)


def ensure_valid(errors: Errors) -> None:
    """Raise `ValidationFailed` with the collected errors, if there are any."""
    if errors:
        raise ValidationFailed(errors)


# --- name ----------------------------------------------------------------------------------


def _trimmed(max_length: int, *, printable_only: bool) -> Check[str]:
    @_string_rule
    def check(value: str, at: str, errors: Errors) -> str | Invalid:
        text = value.strip()
        if not 1 <= len(text) <= max_length:
            return _fail(errors, at, f"must be 1-{max_length} characters after trimming")
        if printable_only and not text.isprintable():
            return _fail(errors, at, "must contain printable characters only")
        if _has_control(text):
            return _fail(errors, at, "must not contain control characters")
        return text

    return check


check_name: Final = _trimmed(limits.NAME_MAX_LENGTH, printable_only=False)
_check_gateway_name: Final = _trimmed(limits.GATEWAY_NAME_MAX_LENGTH, printable_only=True)


# --- gateways ------------------------------------------------------------------------------

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:", re.ASCII)


@_string_rule
def check_ip_or_domain(value: str, at: str, errors: Errors) -> str | Invalid:
    if not value:
        return _fail(errors, at, "must not be empty")
    if _WHITESPACE.search(value):
        return _fail(errors, at, "must not contain whitespace")
    for char in "@;":
        if char in value:
            return _fail(errors, at, f"must not contain '{char}': a host only, not a SIP URI")
    host = value.lower().removesuffix(".")
    if ":" not in host and not host.rpartition(".")[2].isdecimal():
        # No address: an IPv4 one ends in digits, an IPv6 one has colons (and a failed
        # ip_address() costs two exceptions).
        return _check_domain(host, at, errors)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return _check_domain(host, at, errors)
    return _check_address(address, at, errors)


_IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_RESERVED_V4: Final = ipaddress.IPv4Network("240.0.0.0/4")
_NAT64: Final = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def _check_address(address: _IPAddress, at: str, errors: Errors) -> str | Invalid:
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return _fail(errors, at, "must not contain an IPv6 zone index")
    refusal = _refusal(address)
    return _fail(errors, at, refusal) if refusal else str(address)


@functools.lru_cache(maxsize=1024)
def _refusal(address: _IPAddress) -> str:
    """Why `address` may not be a gateway ("": it may). Pure, and a deployment's gateway
    addresses repeat from trunk to trunk: cached (the key is small, zone indexes are refused
    before)."""
    kind = _refused_kind(address)
    if kind:
        return f"must not be {kind} address"
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in _embedded_ipv4(address):
            kind = _refused_kind(embedded)
            if kind:
                return f"must not embed {kind} IPv4 address"
    return ""


def _refused_kind(address: _IPAddress) -> str | None:
    for refused, kind in (
        (address.is_loopback, "a loopback"),
        (address.is_unspecified, "an unspecified"),
        (address.is_link_local, "a link-local"),
        (address.is_multicast, "a multicast"),
        (address in _RESERVED_V4, "a reserved (240.0.0.0/4, broadcast)"),
    ):
        if refused:
            return kind
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses that the standard IPv6 mappings read out of `address`."""
    teredo = address.teredo  # (server, client)
    found = [address.ipv4_mapped, address.sixtofour, teredo[1] if teredo else None]
    if int(address) >> 32 == 0 or any(address in prefix for prefix in _NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))  # IPv4-compatible, NAT64
    return [embedded for embedded in found if embedded is not None]


def _check_domain(host: str, at: str, errors: Errors) -> str | Invalid:
    if ":" in host:
        head, _, tail = host.rpartition(":")
        if tail.isdecimal() and ":" not in head:
            return _fail(errors, at, "must not contain a port: use the port field")
        if _SCHEME.match(host):
            return _fail(errors, at, "must not contain a scheme such as sip:")
        return _fail(errors, at, "is not a valid IPv6 address")
    if len(host) > limits.DOMAIN_MAX_LENGTH:
        return _fail(errors, at, f"must be at most {limits.DOMAIN_MAX_LENGTH} characters")
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return _fail(
            errors,
            at,
            "must be an IP address or a domain name of at least two labels, each 1-63 letters, "
            "digits or hyphens, not starting or ending with a hyphen",
        )
    if labels[-1].isdecimal():
        return _fail(errors, at, "is not a valid IPv4 address")
    return host


def check_port(value: object, at: str, errors: Errors) -> int | Invalid:
    # JSON integers only: bool is an int subclass in Python, and 5060.0 is a float.
    if type(value) is not int:
        return _fail(errors, at, f"must be an integer, not {_json_type(value)}")
    if not limits.MIN_PORT <= value <= limits.MAX_PORT:
        return _fail(errors, at, f"must be between {limits.MIN_PORT} and {limits.MAX_PORT}")
    return value


_GATEWAY_KEYS: Final = ("ipOrDomain", "port", "name")


def check_gateway(value: object, at: str, errors: Errors) -> Gateway | Invalid:
    if not isinstance(value, Mapping):
        return _fail(errors, at, f"must be an object with {', '.join(_GATEWAY_KEYS)}")
    keys_ok = _check_keys(value, at, _GATEWAY_KEYS, errors)
    host = _required(value, "ipOrDomain", at, errors, check_ip_or_domain)
    port = check_port(value["port"], child(at, "port"), errors) if "port" in value else DEFAULT_PORT
    name = _required(value, "name", at, errors, _check_gateway_name)
    if not keys_ok or host is INVALID or port is INVALID or name is INVALID:
        return INVALID
    return Gateway(ip_or_domain=host, port=port, name=name)


def check_gateways(value: object, at: str, errors: Errors) -> tuple[Gateway, ...] | Invalid:
    if not isinstance(value, list | tuple):
        return _fail(errors, at, f"must be an array of gateways, not {_json_type(value)}")
    if not limits.MIN_GATEWAYS <= len(value) <= MAX_GATEWAYS:
        return _fail(errors, at, f"must contain {limits.MIN_GATEWAYS}-{MAX_GATEWAYS} gateways")
    checked = [check_gateway(item, child(at, i), errors) for i, item in enumerate(value)]
    unique = _check_unique_gateways(checked, at, errors)
    gateways = tuple(g for g in checked if g is not INVALID)
    return gateways if unique and len(gateways) == len(checked) else INVALID


def _check_unique_gateways(gateways: list[Gateway | Invalid], at: str, errors: Errors) -> bool:
    first_by_address: dict[tuple[str, int], int] = {}
    first_by_name: dict[str, int] = {}
    before = len(errors)
    for i, gateway in enumerate(gateways):
        if gateway is INVALID:
            continue
        first = first_by_address.setdefault((gateway.ip_or_domain, gateway.port), i)
        if first != i:
            _fail(errors, child(at, i), f"has the same ipOrDomain and port as gateway {first}")
        first = first_by_name.setdefault(gateway.name.casefold(), i)
        if first != i:
            _fail(errors, child(child(at, i), "name"), f"is also the name of gateway {first}")
    return len(errors) == before


# --- authentication ------------------------------------------------------------------------

_USERNAME = re.compile(limits.USERNAME_PATTERN)
_PASSWORD = re.compile(rf"[\x20-\x7e]{{{limits.PASSWORD_MIN_LENGTH},{limits.PASSWORD_MAX_LENGTH}}}")
_AUTH_KEYS: Final = ("username", "password")


@_string_rule
def _check_username(value: str, at: str, errors: Errors) -> str | Invalid:
    if not _USERNAME.fullmatch(value):
        return _fail(errors, at, "must be 1-64 characters of A-Z a-z 0-9 . _ ~ + -")
    return value


@_string_rule
def _check_password(value: str, at: str, errors: Errors) -> str | Invalid:
    if not _PASSWORD.fullmatch(value):
        return _fail(
            errors,
            at,
            f"must be {limits.PASSWORD_MIN_LENGTH}-{limits.PASSWORD_MAX_LENGTH} "
            "printable ASCII characters",
        )
    if value.strip("*") == "":
        return _fail(errors, at, "must not be made only of '*' (that is how passwords are masked)")
    return value


def check_authentication(value: object, at: str, errors: Errors) -> Credentials | Invalid | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return _fail(errors, at, f"must be null or an object, not {_json_type(value)}")
    keys_ok = _check_keys(value, at, _AUTH_KEYS, errors)
    username = _required(value, "username", at, errors, _check_username)
    password = _required(value, "password", at, errors, _check_password)
    if not keys_ok or username is INVALID or password is INVALID:
        return INVALID
    return Credentials(username=username, password=password)


# --- advanced ------------------------------------------------------------------------------

_E164 = re.compile(r"\+[0-9]{1,15}")
_TOKEN = re.compile(rf"[A-Za-z0-9.!%*_+`'~-]{{1,{limits.HEADER_NAME_MAX_LENGTH}}}")
# Officially assigned ISO 3166-1 alpha-2 codes (249), as of 2024.
_ASSIGNED_COUNTRIES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
    GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
    KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
    MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
    TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
    ZW
"""
_COUNTRIES: Final = frozenset(_ASSIGNED_COUNTRIES.split())


def _one_of(*allowed: str) -> Check[str]:
    def check(value: object, at: str, errors: Errors) -> str | Invalid:
        if isinstance(value, str) and value in allowed:
            return value
        return _fail(errors, at, f"must be one of: {', '.join(allowed)}")

    return check


@_string_rule
def _check_country(value: str, at: str, errors: Errors) -> str | Invalid:
    if value not in _COUNTRIES:
        return _fail(errors, at, "must be an assigned ISO 3166-1 alpha-2 code in upper case")
    return value


def _check_numbers(value: object, at: str, errors: Errors) -> list[str] | Invalid:
    if not isinstance(value, list | tuple):
        return _fail(errors, at, f"must be an array of E.164 numbers, not {_json_type(value)}")
    if len(value) > MAX_NUMBERS:
        return _fail(errors, at, f"must contain at most {MAX_NUMBERS} numbers")
    seen: set[str] = set()
    before = len(errors)
    for i, number in enumerate(value):
        if not isinstance(number, str) or not _E164.fullmatch(number):
            _fail(errors, child(at, i), "must be an E.164 number: '+' and 1-15 digits")
        elif number in seen:
            _fail(errors, child(at, i), "is listed twice")
        else:
            seen.add(number)
    return list(value) if len(errors) == before else INVALID


def _check_headers(value: object, at: str, errors: Errors) -> dict[str, str] | Invalid:
    if not isinstance(value, Mapping):
        return _fail(
            errors, at, f"must be an object of header name to value, not {_json_type(value)}"
        )
    if len(value) > MAX_HEADERS:
        return _fail(errors, at, f"must contain at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    before = len(errors)
    for name, header_value in value.items():
        where = child(at, name)
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            _fail(
                errors,
                where,
                "must be a SIP header name "
                f"(RFC 3261 token, 1-{limits.HEADER_NAME_MAX_LENGTH} characters)",
            )
        elif name.casefold() in seen:
            _fail(errors, where, "repeats a header name (they are case-insensitive)")
        else:
            seen.add(name.casefold())
        _check_header_value(header_value, where, errors)
    return dict(value) if len(errors) == before else INVALID


@_string_rule
def _check_header_value(value: str, at: str, errors: Errors) -> str | Invalid:
    if len(value) > limits.HEADER_VALUE_MAX_LENGTH:
        return _fail(errors, at, f"must be at most {limits.HEADER_VALUE_MAX_LENGTH} characters")
    if _has_control(value, tab_allowed=True):
        return _fail(errors, at, "must not contain CR, LF or other control characters")
    return value


_ADVANCED_CHECKS: Final[Mapping[str, Check[object]]] = {
    "transport": _one_of(*limits.TRANSPORTS),
    "numbers": _check_numbers,
    "mediaEncryption": _one_of(*limits.MEDIA_ENCRYPTIONS),
    "destinationCountry": _check_country,
    "headers": _check_headers,
}


def check_advanced(value: object, at: str, errors: Errors) -> dict[str, object] | Invalid:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        return _fail(errors, at, f"must be an object, not {_json_type(value)}")
    before = len(errors)
    _check_keys(value, at, _ADVANCED_CHECKS, errors)
    advanced = {  # in contract order, so that equal settings serialise equally
        key: check(value[key], child(at, key), errors)
        for key, check in _ADVANCED_CHECKS.items()
        if key in value
    }
    return advanced if len(errors) == before else INVALID


# --- the whole body ------------------------------------------------------------------------


def check_body_keys(body: Mapping[str, object], errors: Errors) -> None:
    """Refuse read-only and unknown top-level fields, naming each."""
    _check_keys(body, "", WRITABLE_FIELDS, errors, read_only=READ_ONLY_FIELDS)


def check_patch_keys(patch: Mapping[str, object], errors: Errors) -> None:
    """Key checks for a merge patch: a `null` under an unknown key would vanish in the merge,
    so a typo like `{"advanced": {"trnsport": null}}` is caught here, on the patch itself."""
    check_body_keys(patch, errors)
    for key, allowed in (("authentication", _AUTH_KEYS), ("advanced", _ADVANCED_CHECKS)):
        nested = patch.get(key)
        if isinstance(nested, Mapping):
            _check_keys(nested, child("", key), allowed, errors)


def check_trunk_fields(body: Mapping[str, object], errors: Errors) -> TrunkFields | Invalid:
    """Validate the writable fields of a complete trunk document (top-level keys not checked)."""
    name = _required(body, "name", "", errors, check_name)
    gateways = _required(body, "gateways", "", errors, check_gateways)
    authentication = check_authentication(body.get("authentication"), "/authentication", errors)
    advanced = check_advanced(body.get("advanced"), "/advanced", errors)
    if name is INVALID or gateways is INVALID or authentication is INVALID or advanced is INVALID:
        return INVALID
    return TrunkFields(name, gateways, authentication, advanced)


def validate_trunk_body(body: object) -> TrunkFields:
    """Validate a complete body (create, system trunk declaration); raise `ValidationFailed`
    listing every error."""
    if not isinstance(body, Mapping):
        raise ValidationFailed([FieldViolation("", f"must be an object, not {_json_type(body)}")])
    errors: Errors = []
    check_body_keys(body, errors)
    fields = check_trunk_fields(body, errors)
    ensure_valid(errors)
    assert fields is not INVALID  # an INVALID result always comes with an error
    return fields
