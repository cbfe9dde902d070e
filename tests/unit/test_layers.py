"""Dependencies point inward only: a small AST check of every import under service/ and contracts/.

    domain  <-  service_layer  <-  adapters  <-  bootstrap  <-  entrypoints
                   (logs)          (config, logs)

Every `import` and `from ... import` counts, wherever it sits (module level, inside a function,
under `if TYPE_CHECKING`). A violation is printed as `importer -> imported (rule)`.
Also: tests/ and bench/ import the code by its package name, never through a `sys.path` hack.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts" / "sip_trunk_contracts"


@dataclass(frozen=True)
class Rule:
    """Modules named `layer` (or under it) may import from `service` only what `may` lists."""

    layer: str
    may: tuple[str, ...]


# What the adapters may import from `service`; the composition root adds itself.
ADAPTERS_MAY = (
    "service.domain",
    "service.service_layer",
    "service.adapters",
    "service.config",
    "service.logs",
)

# Checked in order; the first rule whose layer covers a module applies.
RULES = (
    Rule("service.domain", may=("service.domain",)),
    Rule("service.service_layer", may=("service.domain", "service.service_layer", "service.logs")),
    Rule("service.adapters", may=ADAPTERS_MAY),
    Rule("service.bootstrap", may=(*ADAPTERS_MAY, "service.bootstrap")),
    Rule("service.entrypoints", may=("service",)),
    Rule("service.config", may=("service.config",)),
    Rule("service.logs", may=("service.logs",)),
    Rule("sip_trunk_contracts", may=()),
    Rule("service", may=()),  # the package's own __init__, and any new top-level module
)

# Third-party packages the innermost code may use at all (the standard library aside).
THIRD_PARTY = {
    "service.domain": {"sip_trunk_contracts"},  # pure: no I/O, no framework
    "sip_trunk_contracts": {"pydantic"},  # installed on its own by producers and subscribers
}
# Optional extras, by module: PyNaCl for sealing (`sip-trunk-contracts[seal]`), imported only
# when a password is sealed (tests/contracts/test_artefacts.py checks the import footprint).
EXTRAS = {"sip_trunk_contracts.sealing": {"nacl"}}


def covers(prefix: str, module: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(path: Path) -> str:
    base = CONTRACTS.parent if path.is_relative_to(CONTRACTS) else ROOT
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[str]:
    """The modules `path` imports, by absolute name (`from a import b` is `a.b` if b is a module
    of ours, `a` otherwise)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            if base == "__future__":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in MODULES else base


def sources() -> Iterator[Path]:
    for folder in (ROOT / "service", CONTRACTS):
        yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


MODULES = {module_name(p) for p in sources()}


def violations() -> list[str]:
    found: set[str] = set()
    for path in sources():
        importer = module_name(path)
        rule = next(r for r in RULES if covers(r.layer, importer))
        allowed_outside = THIRD_PARTY.get(rule.layer)
        for imported in imports(path):
            top = imported.partition(".")[0]
            if top == "service" and not any(covers(m, imported) for m in rule.may):
                may = ", ".join(rule.may) or "nothing of service"
                found.add(f"{importer} -> {imported} ({rule.layer} may import {may})")
            elif (
                allowed_outside is not None
                and top not in sys.stdlib_module_names
                and not covers(rule.layer, imported)
                and top not in allowed_outside | EXTRAS.get(importer, set())
            ):
                may = ", ".join(sorted(allowed_outside))
                found.add(f"{importer} -> {imported} ({rule.layer} may use the stdlib, {may})")
    return sorted(found)


def test_dependencies_point_inward() -> None:
    found = violations()
    for line in found:
        print(line)
    assert not found, f"{len(found)} import(s) point outward:\n" + "\n".join(found)


def test_the_check_sees_imports() -> None:
    """Guard against a check that passes because it reads nothing."""
    handlers = ROOT / "service" / "service_layer" / "handlers.py"
    assert module_name(handlers) == "service.service_layer.handlers"
    assert "service.domain.rules" in set(imports(handlers))
    assert module_name(CONTRACTS / "__init__.py") == "sip_trunk_contracts"
    assert len(list(sources())) > 40


# -- tests/ and bench/ import by package name -----------------------------------------------


def first_party_stems() -> set[str]:
    """Bare names a `sys.path` hack would make importable: every module file of ours."""
    stems = {
        p.stem
        for folder in ("service", "tests", "bench", "contracts")
        for p in (ROOT / folder).rglob("*.py")
        if p.stem != "__init__"
    }
    return stems - set(sys.stdlib_module_names)


def test_tests_and_bench_use_no_sys_path_hack() -> None:
    stems = first_party_stems()
    found: list[str] = []
    for folder in ("tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            where = path.relative_to(ROOT)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr == "path"
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "sys"
                ):
                    found.append(f"{where}:{node.lineno} uses sys.path")
                elif isinstance(node, ast.Import | ast.ImportFrom) and not getattr(
                    node, "level", 0
                ):
                    names = (
                        [a.name for a in node.names]
                        if isinstance(node, ast.Import)
                        else [node.module or ""]
                    )
                    found.extend(
                        f"{where}:{node.lineno} imports {n!r} by bare name"
                        for n in names
                        if n.partition(".")[0] in stems
                    )
    for line in found:
        print(line)
    assert not found, "\n".join(found)
