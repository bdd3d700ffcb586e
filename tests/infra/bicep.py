"""Reading infra/ the way the offline checks need: Bicep syntax trees (tree-sitter-bicep), the
resources they declare with their properties flattened, and the app settings the Function App
gets. No Bicep CLI exists here; this is syntax, not ARM semantics."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
PARSER = Parser(Language(tree_sitter_bicep.language()))


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def syntax_errors(source: bytes) -> list[tuple[int, int, str]]:
    """(line, column, kind) of every ERROR or MISSING node; empty when the file parses."""
    stack, found = [PARSER.parse(source).root_node], []
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type == "ERROR" or node.is_missing:
            found.append((node.start_point[0] + 1, node.start_point[1] + 1, node.type))
    return sorted(found)


def _text(node: Node) -> str:
    return (node.text or b"").decode()


def _string(node: Node) -> str | None:
    """The value of a plain string literal ('abc'), None for anything computed."""
    if node.type != "string" or any(c.type == "interpolation" for c in node.children):
        return None
    return "".join(_text(c) for c in node.children if c.type == "string_content")


def _flatten(obj: Node, prefix: str, out: dict[str, str], *, raw: bool = False) -> None:
    """``a.b.c -> value``: a plain string's value (or, ``raw``, every value's source text)."""
    for prop in obj.children:
        if prop.type != "object_property":
            continue
        key_node, value = prop.children[0], prop.children[-1]
        key = _string(key_node) if key_node.type == "string" else _text(key_node)
        path = f"{prefix}{key}"
        if value.type == "object":
            _flatten(value, path + ".", out, raw=raw)
        else:
            literal = None if raw else _string(value)
            out[path] = literal if literal is not None else _text(value)


@dataclass
class Resource:
    file: Path
    symbol: str
    type: str  # e.g. Microsoft.Web/sites
    condition: str | None  # the `if (...)` expression, None when unconditional
    existing: bool = False  # a reference to a resource declared elsewhere
    loop: bool = False  # declared with a `for` loop (its props are the loop body's)
    props: dict[str, str] = field(default_factory=dict)
    text: str = ""


@functools.cache
def resources(path: Path) -> tuple[Resource, ...]:
    root = PARSER.parse(path.read_bytes()).root_node
    found = []
    for decl in root.children:
        if decl.type != "resource_declaration":
            continue
        symbol = next(c for c in decl.children if c.type == "identifier")
        type_node = next(c for c in decl.children if c.type == "string")
        body = decl.children[-1]
        condition = None
        if body.type == "if_statement":
            condition = _text(body.children[1])
            body = body.children[-1]
        loop = body.type == "for_statement"
        if loop:  # [for x in xs: {...}]: one declaration, several resources
            body = next(c for c in body.children if c.type == "object")
        res = Resource(
            file=path,
            symbol=_text(symbol),
            type=(_string(type_node) or "").split("@")[0],
            condition=condition,
            existing=any(c.type == "existing" for c in decl.children),
            loop=loop,
            text=_text(decl),
        )
        if body.type == "object":
            _flatten(body, "", res.props)
        found.append(res)
    return tuple(found)


def all_resources() -> list[Resource]:
    return [r for path in bicep_files() for r in resources(path)]


def of_type(type_: str) -> list[Resource]:
    """The resources of that type that infra/ creates (not ``existing`` references)."""
    return [r for r in all_resources() if r.type == type_ and not r.existing]


def symbol(path: Path, name: str) -> Resource:
    """The resource (created or ``existing``) declared as ``name`` in ``path``."""
    found = [r for r in resources(path) if r.symbol == name]
    assert len(found) == 1, f"{path.name}: no resource {name}"
    return found[0]


def scope_of(resource: Resource) -> Resource:
    """The resource a ``scope:`` names (``hostContainers[i]`` is the loop's declaration)."""
    return symbol(resource.file, resource.props["scope"].split("[", 1)[0])


@functools.cache
def app_settings(variable: str = "appSettings") -> dict[str, str]:
    """``name -> value`` of the Function App's settings (infra/app/function.bicep), each value as
    its Bicep source text (``'production'``, ``'@Microsoft.KeyVault(...)'``, ``blobUri``); another
    ``variable`` gives the settings added only in some deployments (``llmSettings``)."""
    root = PARSER.parse((INFRA / "app" / "function.bicep").read_bytes()).root_node
    decl = next(
        d
        for d in root.children
        if d.type == "variable_declaration"
        and any(_text(c) == variable for c in d.children if c.type == "identifier")
    )
    settings: dict[str, str] = {}
    for item in decl.children[-1].children:
        if item.type != "object":
            continue
        flat: dict[str, str] = {}
        _flatten(item, "", flat, raw=True)
        settings[flat["name"].strip("'")] = flat["value"]
    return settings


def skip_comments(path: Path) -> list[tuple[str, str]]:
    """(check id, reason) of every ``// checkov:skip=ID: reason`` in the file."""
    pattern = re.compile(r"//\s*checkov:skip=([A-Z0-9_]+)(?::\s*(.*))?")
    return [(m[1], (m[2] or "").strip()) for m in pattern.finditer(path.read_text())]
