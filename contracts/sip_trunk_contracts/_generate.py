"""Generate the checked-in JSON Schemas and AsyncAPI document from the models.

Run ``python -m sip_trunk_contracts._generate`` after changing a model; a test compares
:func:`render` with the files so that the published artefacts never drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import topics
from .commands import CreateSipTrunk, DeleteSipTrunk, UpdateSipTrunk
from .events import TrunkCreated, TrunkDeleted, TrunkRejected, TrunkState, TrunkUpdated
from .trunk import TrunkView

__all__ = ["MODELS", "main", "render"]

CONTRACT_VERSION = "1.0.0"
_KAFKA_BINDING = "0.5.0"
_COMMANDS: tuple[type[BaseModel], ...] = (CreateSipTrunk, UpdateSipTrunk, DeleteSipTrunk)
_EVENTS: tuple[type[BaseModel], ...] = (TrunkCreated, TrunkUpdated, TrunkDeleted, TrunkRejected)
MODELS: tuple[type[BaseModel], ...] = (*_COMMANDS, *_EVENTS, TrunkState, TrunkView)
"""Every model that gets a file in ``schemas/``."""

_DLT_HEADERS = (
    "kafka_dlt-original-topic",
    "kafka_dlt-original-partition",
    "kafka_dlt-original-offset",
    "kafka_dlt-exception-message",
)


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _ce_type(model: type[BaseModel]) -> str:
    return str(getattr(model, "CE_TYPE"))  # noqa: B009 - ClassVar of the concrete subclass


def _headers(ce_type: str, *, causation_required: bool) -> dict[str, Any]:
    text = {"type": "string", "minLength": 1}
    required = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"]
    required += ["ce_correlationid"] + (["ce_causationid"] if causation_required else [])
    return {
        "type": "object",
        "description": "CloudEvents 1.0 Kafka binary mode; all values UTF-8.",
        "properties": {
            "ce_specversion": {"const": "1.0"},
            "ce_id": {**text, "description": "unique id of this message"},
            "ce_source": {
                **text,
                "description": "who sent it, e.g. /gateway",
                "examples": ["/gateway"],
            },
            "ce_type": {"const": ce_type},
            "ce_time": {"type": "string", "format": "date-time", "description": "RFC 3339"},
            "content-type": {"const": "application/json"},
            "ce_correlationid": {
                **text,
                "description": "conversation id (REST X-Request-ID); defaults to ce_id if absent",
            },
            "ce_causationid": {**text, "description": "ce_id of the command that caused this"},
        },
        "required": required,
    }


def _message(model: type[BaseModel], *, causation_required: bool) -> dict[str, Any]:
    name = model.__name__
    return {
        "name": name,
        "title": _ce_type(model),
        "summary": (model.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "headers": _headers(_ce_type(model), causation_required=causation_required),
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "format": "uuid", "description": "the trunk id"},
                "bindingVersion": _KAFKA_BINDING,
            }
        },
    }


def _channel(address: str, description: str, names: list[str], **binding: Any) -> dict[str, Any]:
    return {
        "address": address,
        "description": description + " Deployments may prefix the name with KAFKA_TOPIC_PREFIX.",
        "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
        "bindings": {"kafka": {"topic": address, **binding, "bindingVersion": _KAFKA_BINDING}},
    }


def _operation(action: str, channel: str, names: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "summary": summary,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in names],
    }


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the service's Kafka interface."""
    _, defs = models_json_schema(
        [(m, "validation") for m in MODELS], ref_template="#/components/schemas/{model}"
    )
    messages: dict[str, Any] = {}
    for model in _COMMANDS:
        messages[model.__name__] = _message(model, causation_required=False)
    for model in _EVENTS:
        messages[model.__name__] = _message(model, causation_required=True)
    messages[TrunkState.__name__] = _message(TrunkState, causation_required=False)
    messages["TrunkTombstone"] = {
        "name": "TrunkTombstone",
        "summary": "Null value written after a delete, so compaction drops the trunk.",
        "payload": {"type": "null"},
        "bindings": messages["TrunkState"]["bindings"],
    }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "summary": "A message on the commands topic that is not a recognisable command.",
        "description": "Key and headers as received, plus the kafka_dlt-* headers. A strict "
        "JSON value is copied with every password member masked (kafka_dlt-redacted); any other "
        "value is withheld (null), since it may hold a password that cannot be found in it: "
        "kafka_dlt-value-withheld says why, kafka_dlt-value-length how long it was.",
        "headers": {
            "type": "object",
            "properties": {h: {"type": "string"} for h in _DLT_HEADERS},
            "required": list(_DLT_HEADERS),
            "additionalProperties": True,
        },
        "payload": {"description": "the original strict JSON value, passwords masked; or null"},
    }
    commands = [m.__name__ for m in _COMMANDS]
    events = [m.__name__ for m in _EVENTS]
    state = ["TrunkState", "TrunkTombstone"]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "SIP trunk service",
            "version": CONTRACT_VERSION,
            "description": "Kafka interface of the SIP trunk service; see CONTRACT.md §3. "
            "Every command gets exactly one outcome event with ce_causationid = its ce_id.",
        },
        "defaultContentType": "application/json",
        "channels": {
            "commands": _channel(topics.COMMANDS, "Commands, keyed by trunk id.", commands),
            "events": _channel(topics.EVENTS, "Outcome events, keyed by trunk id.", events),
            "state": _channel(
                topics.STATE,
                "Latest snapshot per trunk; compacted.",
                state,
                topicConfiguration={"cleanup.policy": ["compact"]},
            ),
            "dlt": _channel(topics.DLT, "Unrecognisable commands.", ["DeadLetter"]),
        },
        "operations": {
            "receiveCommands": _operation(
                "receive", "commands", commands, "The service consumes commands."
            ),
            "sendEvents": _operation("send", "events", events, "One outcome per command."),
            "sendState": _operation("send", "state", state, "Snapshot after every change."),
            "sendDeadLetters": _operation(
                "send", "dlt", ["DeadLetter"], "Unrecognisable input, kept for inspection."
            ),
        },
        "components": {"schemas": defs["$defs"], "messages": messages},
    }


def render() -> dict[str, str]:
    """Generated files: path relative to the package directory → content."""
    files = {
        f"schemas/{m.__name__}.json": _dump(m.model_json_schema(by_alias=True)) for m in MODELS
    }
    files["asyncapi.json"] = _dump(asyncapi())
    return files


def main() -> None:
    """Write the files next to this module and remove stale schema files."""
    root = Path(__file__).parent
    files = render()
    for stale in (root / "schemas").glob("*.json"):
        if f"schemas/{stale.name}" not in files:
            stale.unlink()
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
