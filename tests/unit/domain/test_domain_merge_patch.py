"""RFC 7396 JSON Merge Patch: the RFC's examples and its laws."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain import apply_merge_patch
from tests.unit.domain.domain_builders import json_values

# RFC 7396, appendix A.
RFC_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_rfc_examples(target: object, patch: object, result: object) -> None:
    assert apply_merge_patch(target, patch) == result


objects = st.dictionaries(st.sampled_from("abcde"), json_values, max_size=5)


@settings(max_examples=200)
@given(target=json_values, patch=json_values)
def test_applying_a_patch_twice_is_applying_it_once(target: object, patch: object) -> None:
    once = apply_merge_patch(target, patch)
    assert apply_merge_patch(once, patch) == once


@settings(max_examples=100)
@given(target=objects)
def test_the_empty_patch_is_the_identity_on_objects(target: dict[str, object]) -> None:
    assert apply_merge_patch(target, {}) == target


@settings(max_examples=200)
@given(target=objects, patch=objects)
def test_keys_absent_from_the_patch_are_untouched(
    target: dict[str, object], patch: dict[str, object]
) -> None:
    result = apply_merge_patch(target, patch)
    assert isinstance(result, dict)
    assert {k: v for k, v in result.items() if k not in patch} == {
        k: v for k, v in target.items() if k not in patch
    }


@settings(max_examples=100)
@given(target=json_values, patch=json_values)
def test_arguments_are_neither_mutated_nor_shared(target: object, patch: object) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    _wreck(apply_merge_patch(target, patch))
    assert (target, patch) == (target_before, patch_before)


def _wreck(value: object) -> None:
    """Empty every container in `value`, depth first."""
    if isinstance(value, dict):
        for item in value.values():
            _wreck(item)
        value.clear()
    elif isinstance(value, list):
        for item in value:
            _wreck(item)
        value.clear()
