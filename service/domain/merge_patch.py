"""JSON Merge Patch, RFC 7396, over JSON-decoded values."""

from __future__ import annotations

import copy
from collections.abc import Mapping

__all__ = ["apply_merge_patch"]


def apply_merge_patch(target: object, patch: object) -> object:
    """Return `target` patched by `patch`; neither argument is mutated nor shared with the result.

    An object patch is merged key by key (`null` removes the key); any other patch replaces the
    target whole, which is why lists are never merged.
    """
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = copy.deepcopy(dict(target)) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result
