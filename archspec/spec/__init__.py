"""Loading a spec: YAML text → validated :class:`Spec`, every error located in the file."""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError

from archspec.layers import LAYER_KINDS
from archspec.spec.blocks import expand
from archspec.spec.diagnostics import (
    MAX_ERRORS,
    Diagnostic,
    Kind,
    Position,
    Severity,
    SpecError,
    did_you_mean,
    more_errors,
)
from archspec.spec.loader import Document, PathKey, load_document, parse_document
from archspec.spec.schema import SPEC_VERSION, Spec, validate_by_kind

__all__ = ["Document", "Spec", "SpecError", "diagnostic", "load", "loads", "locate", "validate"]


def load(path: str | os.PathLike[str]) -> Spec:
    """Read, parse and validate a spec file; raise :class:`SpecError` with located diagnostics."""
    return validate(load_document(path))


def loads(text: str, file: str = "<string>") -> Spec:
    return validate(parse_document(text, file))


def validate(doc: Document) -> Spec:
    data = doc.data
    if not isinstance(data, dict):
        raise _fail(doc, "a spec is a mapping with keys archspec, name, input and layers", ())
    _check_version(doc, data)
    doc.expansion = expand(doc)
    try:
        spec = validate_by_kind(data) or Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_schema_diagnostics(doc, exc)) from None
    spec._document = doc
    return spec


def _fail(
    doc: Document, message: str, path: PathKey, *, key: bool = False, hint: str | None = None
) -> SpecError:
    return SpecError(
        [
            Diagnostic(
                Severity.ERROR, Kind.INPUT, message, doc.file, doc.position(path, key=key), hint
            )
        ]
    )


def _check_version(doc: Document, data: dict[Any, Any]) -> None:
    if "archspec" not in data:
        raise _fail(
            doc,
            f"missing the version key; a spec starts with 'archspec: {SPEC_VERSION}'",
            (),
            hint=None,
        )
    version = data["archspec"]
    if isinstance(version, int) and not isinstance(version, bool) and version > SPEC_VERSION:
        raise _fail(
            doc,
            f"spec version {version} is newer than this archspec understands (version {SPEC_VERSION}); "
            "upgrade archspec",
            ("archspec",),
        )
    if version != SPEC_VERSION or isinstance(version, bool):
        raise _fail(
            doc,
            f"unknown spec version {version!r}; this archspec reads 'archspec: {SPEC_VERSION}'",
            ("archspec",),
        )


def _data_path(data: Any, loc: tuple[int | str, ...]) -> tuple[PathKey, bool]:
    """Map pydantic's loc (which includes union branch labels) onto the data's own path.

    Returns the path and whether its last element is a key that is present in the data.
    """
    path: list[str | int] = []
    node = data
    for seg in loc:
        in_dict = isinstance(node, dict) and seg in node
        in_list = isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node)
        if not (in_dict or in_list):
            continue  # a union branch label, not part of the data
        node = node[seg]
        path.append(seg)
    return tuple(path), bool(path) and path[-1] == loc[-1]


def _dotted(path: PathKey) -> str:
    out = ""
    for seg in path:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else str(seg))
    return out


def _schema_diagnostics(doc: Document, exc: ValidationError) -> list[Diagnostic]:
    """One diagnostic per offending value: union branches' errors on one value merge into one line."""
    groups: dict[tuple[PathKey, str], list[Any]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path, _ = _data_path(doc.data, loc)
        if err["type"] in ("extra_forbidden", "missing"):
            path = (*path, loc[-1]) if path[-1:] != (loc[-1],) else path
        elif err["type"] == "union_tag_invalid":
            path = (*path, "type")
        groups.setdefault(
            (path, err["type"] if err["type"] in ("extra_forbidden", "missing") else ""), []
        ).append(err)
    # A misspelt required key is both unknown and missing; the did-you-mean line says it all.
    # (Only mappings that miss a key can hold such a misspelling, and only MAX_ERRORS of
    # their unknown keys are compared: difflib per key made 90,000 unknown keys take minutes.)
    short = {path[:-1] for path, special in groups if special == "missing"}
    unknown = [p for p, special in groups if special == "extra_forbidden" and p[:-1] in short]
    suggested = {
        (*path[:-1], name)
        for path in unknown[:MAX_ERRORS]
        if (name := _closest(str(path[-1]), _allowed_keys(doc.data, path[:-1])))
    }
    shown = [
        (key, errs)
        for key, errs in groups.items()
        if not (key[1] == "missing" and key[0] in suggested)
    ]
    diagnostics: list[Diagnostic] = []
    for (path, special), errs in shown[:MAX_ERRORS]:
        message, hint, key = _describe(doc, path, special, errs)
        pos = doc.position(path, key=key)
        diagnostics.append(
            Diagnostic(
                Severity.ERROR, Kind.INPUT, message, doc.file, pos, hint, note=doc.note(path)
            )
        )
    diagnostics.sort(key=lambda d: (d.position or Position(0, 0)).line)
    if len(shown) > MAX_ERRORS:
        (path, special), _ = shown[MAX_ERRORS]
        pos = doc.position(path, key=special == "extra_forbidden")
        diagnostics.append(more_errors(doc.file, pos, len(shown) - MAX_ERRORS))
    return diagnostics


def _describe(
    doc: Document, path: PathKey, special: str, errs: list[Any]
) -> tuple[str, str | None, bool]:
    where = _dotted(doc.written_path(path))
    err = errs[0]
    if special == "extra_forbidden":
        allowed = _allowed_keys(doc.data, path[:-1])
        return f"{where}: unknown key '{path[-1]}'", did_you_mean(str(path[-1]), allowed), True
    if special == "missing":
        return f"{where}: required key '{path[-1]}' is missing", None, False
    if err["type"] == "union_tag_invalid":
        tag = err["ctx"]["tag"]
        hint = (
            did_you_mean(str(tag), LAYER_KINDS) or f"known types: {', '.join(sorted(LAYER_KINDS))}"
        )
        return f"{where}: unknown layer type '{tag}'", hint, False
    if err["type"] == "union_tag_not_found":
        return (
            f"{where}: layer has no 'type'",
            f"known types: {', '.join(sorted(LAYER_KINDS))}",
            False,
        )
    got = err.get("input")
    if err["type"] == "string_pattern_mismatch":
        rule = "letters, digits and _ (not starting with a digit), parts joined by dots"
        if path == ("name",):
            rule = "letters, digits, _ . and - (starting with a letter)"
        return f"{where}: {got!r} is not a valid name: use {rule}", None, False
    wants = []
    for e in errs:
        msg = str(e["msg"])
        msg = msg.removeprefix("Input should be ").removeprefix("Value error, ")
        if msg not in wants:
            wants.append(msg)
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{where}: expected {' or '.join(wants)}, got {shown}", None, False


def _closest(word: str, choices: list[str]) -> str | None:
    hint = did_you_mean(word, choices)
    return hint.split("'")[1] if hint else None


def _allowed_keys(data: Any, path: PathKey) -> list[str]:
    node = data
    for seg in path:
        node = node[seg]
    if path == ():
        return list(Spec.model_fields)
    if len(path) == 2 and path[0] == "layers" and isinstance(node, dict):
        cls = LAYER_KINDS.get(str(node.get("type")))
        if cls is not None:
            return list(cls.model_fields)
    if path and path[-1] == "input":
        return ["shape", "dtype"]
    if path and path[-1] == "expect":
        return ["output", "params", "buffers", "connections", "macs", "flops"]
    return []


def locate(
    spec: Spec, path: PathKey, *, key: bool = False, written: bool = False
) -> tuple[str, Position | None]:
    """File and position of a value in the spec, for diagnostics from later stages.

    ``path`` points into the spec as loaded (blocks expanded), or, with
    ``written``, into the file as written (a block use, say).
    """
    doc: Document | None = spec.document
    if doc is None:
        return f"<{spec.name}>", None
    if written:
        return doc.file, doc.written_position(path, key=key)
    return doc.file, doc.position(path, key=key)


def diagnostic(
    spec: Spec,
    path: PathKey,
    message: str,
    *,
    kind: Kind = Kind.INPUT,
    severity: Severity = Severity.ERROR,
    hint: str | None = None,
    key: bool = False,
    written: bool = False,
    code: str | None = None,
) -> Diagnostic:
    file, pos = locate(spec, path, key=key, written=written)
    doc: Document | None = spec.document
    note = doc.note(path) if doc is not None and not written else None
    return Diagnostic(severity, kind, message, file, pos, hint, code, note=note)
