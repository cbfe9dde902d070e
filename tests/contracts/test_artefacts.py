"""Checked-in generated artefacts and the package's dependency footprint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sip_trunk_contracts
from sip_trunk_contracts import COMMAND_TYPES, EVENT_TYPES, Topics
from sip_trunk_contracts._generate import render

PACKAGE = Path(sip_trunk_contracts.__file__).parent
REGENERATE = "generated files are stale: run `python -m sip_trunk_contracts._generate`"


def test_checked_in_files_match_the_models() -> None:
    files = render()
    for name, content in files.items():
        path = PACKAGE / name
        assert path.is_file(), f"{name} missing; {REGENERATE}"
        assert path.read_text(encoding="utf-8") == content, f"{name} differs; {REGENERATE}"
    on_disk = {f"schemas/{p.name}" for p in (PACKAGE / "schemas").glob("*.json")}
    assert on_disk <= set(files), f"stale schema files {on_disk - set(files)}; {REGENERATE}"


def test_asyncapi_document_shape() -> None:
    doc = json.loads(render()["asyncapi.json"])
    assert doc["asyncapi"] == "3.0.0"
    topics = Topics()
    addresses = {name: ch["address"] for name, ch in doc["channels"].items()}
    assert addresses == {
        "commands": topics.commands,
        "events": topics.events,
        "state": topics.state,
        "dlt": topics.dlt,
    }
    titles = {m.get("title") for m in doc["components"]["messages"].values()}
    assert set(COMMAND_TYPES) | set(EVENT_TYPES) <= titles
    actions = {op["channel"]["$ref"]: op["action"] for op in doc["operations"].values()}
    assert actions == {
        "#/channels/commands": "receive",
        "#/channels/events": "send",
        "#/channels/state": "send",
        "#/channels/dlt": "send",
    }
    # Every local reference resolves inside the document.
    for ref in _refs(doc):
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_imports_nothing_but_pydantic_and_stdlib() -> None:
    allowed = {
        "pydantic",
        "pydantic_core",
        "typing_extensions",
        "annotated_types",
        "typing_inspection",
    }
    code = (
        "import sys, sip_trunk_contracts, sip_trunk_contracts._generate\n"
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    third_party = set(out) - set(sys.stdlib_module_names) - allowed - {"sip_trunk_contracts"}
    third_party -= {m for m in third_party if m.startswith("_")}  # interpreter internals
    assert not third_party, f"sip_trunk_contracts pulls in {sorted(third_party)}"
