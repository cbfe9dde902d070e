"""Example tests for the field rules of CONTRACT.md §1."""

from __future__ import annotations

import sys
import unicodedata
from typing import Any

import pytest

from service.domain import Credentials, Gateway, Reason, ValidationFailed, validate_trunk_body
from service.domain.validation import (
    _WHITESPACE,
    INVALID,
    _has_control,
    check_ip_or_domain,
    check_port,
)
from tests.unit.domain.domain_builders import body


def errors_of(value: object) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        validate_trunk_body(value)
    assert caught.value.reason is Reason.VALIDATION_FAILED
    assert caught.value.errors
    return {e.pointer: e.message for e in caught.value.errors}


def gateway(**fields: Any) -> dict[str, Any]:
    return {"ipOrDomain": "gw.example.com", "port": 5060, "name": "gw", **fields}


def test_a_valid_body_is_normalised() -> None:
    fields = validate_trunk_body(
        body(
            name="  Main  ",
            gateways=[{"ipOrDomain": "GW.Example.COM.", "name": " Primary "}],
            advanced={"numbers": ["+4930123"], "transport": "tls"},
        )
    )
    assert fields.name == "Main"
    assert fields.gateways == (Gateway("gw.example.com", 5060, "Primary"),)
    assert fields.authentication == Credentials("office_sip_user", "s3cret-pass")
    assert list(fields.advanced) == ["transport", "numbers"]  # contract order


def test_authentication_and_advanced_may_be_null_or_absent() -> None:
    for extra in ({}, {"authentication": None, "advanced": None}):
        fields = validate_trunk_body({"name": "n", "gateways": [gateway()], **extra})
        assert fields.authentication is None
        assert fields.advanced == {}


def test_every_error_of_a_body_is_reported() -> None:
    errors = errors_of(
        {
            "name": " ",
            "gateways": [gateway(port="5060")],
            "authentication": {"username": "bad user", "password": "short"},
            "advanced": {"numbers": ["+49", "0049"]},
            "id": "x",
            "colour": "red",
        }
    )
    assert set(errors) == {
        "/name",
        "/gateways/0/port",
        "/authentication/username",
        "/authentication/password",
        "/advanced/numbers/1",
        "/id",
        "/colour",
    }
    assert errors["/id"] == "is read-only"
    assert errors["/colour"] == "is not a known field"


@pytest.mark.parametrize("field", ["id", "isSystem", "providerId", "createdAt", "updatedAt"])
def test_read_only_fields_are_refused_by_name(field: str) -> None:
    assert errors_of(body(**{field: "x"})) == {f"/{field}": "is read-only"}


def test_required_fields() -> None:
    assert errors_of({}) == {"/name": "is required", "/gateways": "is required"}


def test_a_field_name_is_escaped_in_its_pointer() -> None:
    assert set(errors_of(body(**{"a/b~c": 1}))) == {"/a~1b~0c"}


@pytest.mark.parametrize("value", [None, [], "x", 3, True])
def test_a_body_that_is_not_an_object(value: object) -> None:
    assert set(errors_of(value)) == {""}


@pytest.mark.parametrize(
    ("name", "ok"),
    [("a", True), ("x" * 100, True), (" " + "x" * 100 + " ", True), ("", False), ("   ", False),
     ("x" * 101, False), ("a\x00b", False), ("a\u0085b", False), ("a\ud800", False), (3, False),
     (None, False)],
)  # fmt: skip
def test_name(name: object, ok: bool) -> None:
    if ok:
        validate_trunk_body(body(name=name))
    else:
        assert set(errors_of({**body(), "name": name})) == {"/name"}


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Example.COM.", "example.com"),
        ("sip.example.co.uk", "sip.example.co.uk"),
        ("a-1.b2", "a-1.b2"),
        ("10.0.0.1", "10.0.0.1"),
        ("203.0.113.5.", "203.0.113.5"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("223.255.255.255", "223.255.255.255"),
        # IPv6 addresses that carry a public IPv4 address (203.0.113.5, 8.8.8.8)
        ("::ffff:203.0.113.5", "::ffff:cb00:7105"),
        ("2002:cb00:7105::1", "2002:cb00:7105::1"),
        ("64:ff9b::203.0.113.5", "64:ff9b::cb00:7105"),
        ("64:ff9b:1::808:808", "64:ff9b:1::808:808"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
        ("x" * 63 + ".com", "x" * 63 + ".com"),
    ],
)
def test_ip_or_domain_accepted(raw: str, normalised: str) -> None:
    assert check_ip_or_domain(raw, "/p", []) == normalised


@pytest.mark.parametrize(
    ("raw", "message_part"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("::", "unspecified"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "reserved"),
        ("240.0.0.1", "reserved"),
        # IPv6 addresses that carry a refused IPv4 address
        ("::ffff:169.254.0.1", "link-local"),
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("2002:7f00:1::", "loopback"),  # 6to4
        ("2002:e000:1::5", "multicast"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64, well-known prefix
        ("64:ff9b::255.255.255.255", "reserved"),
        ("64:ff9b:1::7f00:1", "loopback"),  # NAT64, local-use prefix
        ("64:ff9b:1:ab::0.0.0.0", "unspecified"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo client 127.0.0.1
        ("fe80::1%eth0", "zone"),
        ("sip:gw.example.com", "scheme"),
        ("sips://gw.example.com", "scheme"),
        ("user@gw.example.com", "'@'"),
        ("gw.example.com;transport=tcp", "';'"),
        ("gw.example .com", "whitespace"),
        (" gw.example.com", "whitespace"),
        ("gw.example.com:5060", "port"),
        ("10.0.0.1:5060", "port"),
        ("[2001:db8::1]", "IPv6"),
        ("2001:db8::g", "IPv6"),
        ("localhost", "two labels"),
        ("-gw.example.com", "hyphen"),
        ("gw-.example.com", "hyphen"),
        ("gw..example.com", "labels"),
        ("x" * 64 + ".com", "labels"),
        ("gw_1.example.com", "labels"),
        ("bücher.example", "labels"),
        ("a." * 126 + "com", "253"),
        ("256.1.1.1", "IPv4"),
        ("1.2.3", "IPv4"),
        ("", "empty"),
        (5060, "string"),
        (None, "string"),
    ],
)
def test_ip_or_domain_refused(raw: object, message_part: str) -> None:
    errors: list[Any] = []
    assert check_ip_or_domain(raw, "/p", errors) is INVALID
    assert [e.pointer for e in errors] == ["/p"]
    assert message_part in errors[0].message


@pytest.mark.parametrize("port", [1, 5060, 65535])
def test_port_accepted(port: int) -> None:
    assert check_port(port, "/p", []) == port


@pytest.mark.parametrize("port", [0, 65536, -1, "5060", 5060.0, True, None, [5060]])
def test_port_refused(port: object) -> None:
    errors: list[Any] = []
    assert check_port(port, "/p", errors) is INVALID
    assert len(errors) == 1


def test_port_defaults_to_5060() -> None:
    gateways = [{"ipOrDomain": "gw.example.com", "name": "gw"}]
    assert validate_trunk_body(body(gateways=gateways)).gateways[0].port == 5060


@pytest.mark.parametrize(
    ("gateways", "pointers"),
    [
        ([], {"/gateways"}),
        ([gateway(name=f"g{i}", port=5000 + i) for i in range(11)], {"/gateways"}),
        ("gw.example.com", {"/gateways"}),
        ({"0": gateway()}, {"/gateways"}),
        (["gw.example.com"], {"/gateways/0"}),
        ([{"ipOrDomain": "gw.example.com"}], {"/gateways/0/name"}),
        ([{"name": "gw"}], {"/gateways/0/ipOrDomain"}),
        ([gateway(weight=1)], {"/gateways/0/weight"}),
        ([gateway(name="")], {"/gateways/0/name"}),
        ([gateway(name="x" * 65)], {"/gateways/0/name"}),
        ([gateway(name="a\tb")], {"/gateways/0/name"}),
        ([gateway(name="a"), gateway(name="b", ipOrDomain="GW.example.com.")], {"/gateways/1"}),
        ([gateway(name="a"), gateway(name="b", port=None)], {"/gateways/1/port"}),
        ([gateway(name="Edge"), gateway(name="edge", port=5061)], {"/gateways/1/name"}),
        ([gateway(port=0), gateway(ipOrDomain="::1", port=1)], {"/gateways/0/port",
                                                                 "/gateways/1/ipOrDomain"}),
    ],
)  # fmt: skip
def test_gateways_refused(gateways: object, pointers: set[str]) -> None:
    assert set(errors_of(body(gateways=gateways))) == pointers


def test_same_host_on_another_port_is_another_gateway() -> None:
    fields = validate_trunk_body(body(gateways=[gateway(name="a"), gateway(name="b", port=5061)]))
    assert len(fields.gateways) == 2


def test_an_omitted_port_counts_as_5060_for_duplicates() -> None:
    omitted = {"ipOrDomain": "gw.example.com", "name": "b"}
    assert set(errors_of(body(gateways=[gateway(name="a"), omitted]))) == {"/gateways/1"}


@pytest.mark.parametrize(
    ("authentication", "pointers"),
    [
        ("user:pass", {"/authentication"}),
        ({}, {"/authentication/username", "/authentication/password"}),
        ({"username": "u"}, {"/authentication/password"}),
        ({"username": "u", "password": "p" * 8, "realm": "r"}, {"/authentication/realm"}),
        ({"username": "", "password": "p" * 8}, {"/authentication/username"}),
        ({"username": "u" * 65, "password": "p" * 8}, {"/authentication/username"}),
        ({"username": "a@b", "password": "p" * 8}, {"/authentication/username"}),
        ({"username": 7, "password": "p" * 8}, {"/authentication/username"}),
        ({"username": "u", "password": "p" * 7}, {"/authentication/password"}),
        ({"username": "u", "password": "p" * 129}, {"/authentication/password"}),
        ({"username": "u", "password": "pässwörter"}, {"/authentication/password"}),
        ({"username": "u", "password": "pass\nword"}, {"/authentication/password"}),
        ({"username": "u", "password": "********"}, {"/authentication/password"}),
        ({"username": "u", "password": "*" * 12}, {"/authentication/password"}),
    ],
)
def test_authentication_refused(authentication: object, pointers: set[str]) -> None:
    assert set(errors_of(body(authentication=authentication))) == pointers


def test_authentication_accepts_the_contract_character_sets() -> None:
    credentials = {"username": "A-z_0.9~+x", "password": " !~*p" + "x" * 123}
    fields = validate_trunk_body(body(authentication=credentials))
    assert fields.authentication == Credentials(**credentials)


def test_a_refused_password_is_never_quoted() -> None:
    secret = "tiny"  # too short
    with pytest.raises(ValidationFailed) as caught:
        validate_trunk_body(body(authentication={"username": "u", "password": secret}))
    assert secret not in repr(caught.value)
    assert secret not in caught.value.detail


def test_advanced_accepts_every_known_key() -> None:
    advanced = {
        "transport": "udp",
        "numbers": ["+1", "+" + "9" * 15],
        "mediaEncryption": "require",
        "destinationCountry": "DE",
        "headers": {"X-Tenant": "a\tb", "P-Asserted-Identity": "<sip:+4930@x>", "a.b!%*_+`'~": ""},
    }
    assert validate_trunk_body(body(advanced=advanced)).advanced == advanced


@pytest.mark.parametrize(
    ("advanced", "pointers"),
    [
        ([], {"/advanced"}),
        ({"trnsport": "udp"}, {"/advanced/trnsport"}),
        ({"transport": "UDP"}, {"/advanced/transport"}),
        ({"transport": None}, {"/advanced/transport"}),
        ({"mediaEncryption": "on"}, {"/advanced/mediaEncryption"}),
        ({"numbers": "+4930"}, {"/advanced/numbers"}),
        ({"numbers": [f"+{n}" for n in range(51)]}, {"/advanced/numbers"}),
        ({"numbers": ["+1", "+" + "1" * 16, "4930", "+", "+1"]},
         {"/advanced/numbers/1", "/advanced/numbers/2", "/advanced/numbers/3",
          "/advanced/numbers/4"}),
        ({"numbers": [49]}, {"/advanced/numbers/0"}),
        ({"destinationCountry": "de"}, {"/advanced/destinationCountry"}),
        ({"destinationCountry": "XX"}, {"/advanced/destinationCountry"}),
        ({"destinationCountry": "DEU"}, {"/advanced/destinationCountry"}),
        ({"headers": ["X-A"]}, {"/advanced/headers"}),
        ({"headers": {"X A": "v"}}, {"/advanced/headers/X A"}),
        ({"headers": {"X:A": "v"}}, {"/advanced/headers/X:A"}),
        ({"headers": {"": "v"}}, {"/advanced/headers/"}),
        ({"headers": {"x" * 256: "v"}}, {"/advanced/headers/" + "x" * 256}),
        ({"headers": {"X-A": "v", "x-a": "w"}}, {"/advanced/headers/x-a"}),
        ({"headers": {"X-A": "v\r\nX-B: w"}}, {"/advanced/headers/X-A"}),
        ({"headers": {"X-A": "v" * 1025}}, {"/advanced/headers/X-A"}),
        ({"headers": {"X-A": 1}}, {"/advanced/headers/X-A"}),
    ],
)  # fmt: skip
def test_advanced_refused(advanced: object, pointers: set[str]) -> None:
    assert set(errors_of(body(advanced=advanced))) == pointers


def test_wrong_json_types_get_a_clear_message() -> None:
    errors = errors_of(body(name=1, gateways={"a": 1}, authentication=[], advanced="tls"))
    assert errors == {
        "/name": "must be a string, not a number",
        "/gateways": "must be an array of gateways, not an object",
        "/authentication": "must be null or an object, not an array",
        "/advanced": "must be an object, not a string",
    }


def test_a_trunk_name_may_hold_any_non_control_character() -> None:
    name = "Büro\u00a0👩\u200d💻 (Main)"
    assert validate_trunk_body(body(name=name)).name == name


def test_control_characters_and_whitespace_are_found_as_unicode_defines_them() -> None:
    """The character classes the rules search with agree, on every code point, with
    `unicodedata` (Cc and Cs) and `str.isspace`."""
    for char in map(chr, range(sys.maxunicode + 1)):
        control = unicodedata.category(char) in ("Cc", "Cs")
        assert _has_control(char) is control
        assert _has_control(char, tab_allowed=True) is (control and char != "\t")
        assert (_WHITESPACE.search(char) is not None) is char.isspace()


@pytest.mark.parametrize("raw", ["203.0.113.5", "127.0.0.1", "::ffff:127.0.0.1", "2001:db8::1"])
def test_an_address_is_judged_the_same_every_time(raw: str) -> None:
    first: list[Any] = []
    again: list[Any] = []  # a verdict is remembered per address: it must not change
    assert check_ip_or_domain(raw, "/p", first) == check_ip_or_domain(raw, "/p", again)
    assert first == again
