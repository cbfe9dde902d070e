"""Strict JSON (CONTRACT.md §4.1): RFC 8259 UTF-8 text and nothing more, nested at most 32 deep.

Python's `json` module accepts and writes `NaN` and `Infinity`, turns `1e99999` into infinity,
and decodes `"\\ud800"` into a lone surrogate that no UTF-8 text can carry. None of that may
reach a topic. `loads` also measures the nesting without recursion *before* parsing, so no
recursive code downstream (merge patch, masking, encoding) ever sees a hostile depth.
"""

from __future__ import annotations

import json
import math
import operator
import re
from itertools import accumulate, repeat
from typing import Any

from .limits import MAX_DEPTH

__all__ = ["MAX_DEPTH", "JsonError", "canonical", "dumps", "loads"]

# A JSON string literal; possessive, so an unclosed one runs to the end in linear time (no
# retry from every later quote).
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?')
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = str.maketrans({"[": "\x02", "{": "\x02", "]": "\x00", "}": "\x00"})  # step + 1
# Only a \u escape can carry a surrogate (raw ones are not UTF-8): the exact check runs only then.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonError(ValueError):
    """Not strict JSON: the message says why, without quoting the input."""


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse strict JSON; raises `JsonError` for anything RFC 8259 or the depth limit refuses."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise JsonError("not UTF-8") from None
    _check_text_depth(text, max_depth)
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except JsonError:
        raise
    except (ValueError, RecursionError) as exc:  # also int() past its digit limit
        raise JsonError(f"not valid JSON: {str(exc)[:200]}") from None
    if _SURROGATE_ESCAPE.search(text):
        dumps(value, max_depth=max_depth)  # refuses a lone surrogate, the only way one can come
    return value


def dumps(value: Any, *, max_depth: int = MAX_DEPTH) -> bytes:
    """Serialise to strict UTF-8 JSON; raises `JsonError` for NaN, infinities, lone surrogates
    or nesting past `max_depth`, so nothing that `loads` would refuse is ever written."""
    if _deeper_than(value, max_depth):
        raise JsonError(f"nested deeper than {max_depth} levels")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(
            "utf-8"
        )
    except UnicodeEncodeError:
        raise JsonError("contains unpaired UTF-16 surrogates") from None
    except ValueError as exc:
        raise JsonError(str(exc)) from None


def canonical(value: Any) -> bytes:
    """One byte form per value (sorted keys, no blanks): what a body hash is taken of.
    `value` must be strict JSON already (as `loads` returns it)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Whether decoded JSON nests past `max_depth` (`{}` is 1), found without recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth + 1 > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _check_text_depth(text: str, max_depth: int) -> None:
    """Refuse nesting past `max_depth`, in linear time and without a Python-level loop."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot be too deep: the common case
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return
    steps = map(operator.sub, brackets.translate(_STEP).encode("latin-1"), repeat(1))
    if max(accumulate(steps)) > max_depth:
        raise JsonError(f"nested deeper than {max_depth} levels")


def _no_constant(name: str) -> Any:
    raise JsonError(f"{name} is not JSON")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise JsonError(f"number out of range: {literal[:40]}")
    return number
