"""Spec version 1 as pydantic models.

The layer list is a union of every registered kind, discriminated on
``type``; that one definition gives validation, the error locations and the
JSON Schema that editors use.

Building the validator of that union means building every kind's, about a
third of ``archspec check``'s start-up; a spec uses a handful of kinds. So a
spec is first validated kind by kind (:func:`validate_by_kind`, only the kinds
it uses get built), and only a spec that fails there goes through the whole
union, which gives the located errors. Both read the same field definitions,
so they accept the same specs.
"""

import functools
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PrivateAttr,
    ValidationError,
    create_model,
)

from archspec.layers import LAYER_KINDS
from archspec.layers.base import Expect, Layer, PositiveInt, SpecName
from archspec.vocab import DTypeName

SPEC_VERSION = 1

if TYPE_CHECKING:
    AnyLayer = Layer
else:

    class AnyLayer:
        """Any registered kind, discriminated on ``type``: the union is made when Spec's
        validator is built, so defining Spec does not import every kind."""

        @classmethod
        def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
            kinds = Union[tuple(LAYER_KINDS.values())]  # noqa: UP007
            return handler.generate_schema(Annotated[kinds, Field(discriminator="type")])


class InputSpec(BaseModel):
    """One sample's input; the batch axis is implicit."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    shape: list[PositiveInt] = Field(
        min_length=1, max_length=8, description="per-sample shape, channels first"
    )
    dtype: DTypeName = Field("float32", description="element type")


class BlockDef(BaseModel):
    """A reusable list of layers with parameters, expanded where a layer says ``block:``.

    Its layers are written like the spec's own, with ``$param`` for a parameter's
    value and ``input`` for the block's input; they are validated once expanded.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    params: dict[str, Any] = Field(
        default_factory=dict, description="parameter names and their defaults (~: required)"
    )
    layers: list[dict[str, Any]] = Field(min_length=1, description="the block's layers in order")
    doc: str | None = Field(None, description="what the block is, for readers")


class BlockUse(BaseModel):
    """One use of a block in ``layers:`` (expanded at load time; documents the schema)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    name: str = Field(description="prefix of the expanded layers' dotted names")
    block: str = Field(description="the block to expand")
    repeat: PositiveInt | None = Field(
        None, description="this many copies in a row, named name.0, name.1, …"
    )
    with_: dict[str, Any] | None = Field(
        None, alias="with", description="values for the block's parameters"
    )
    inputs: list[str] | None = Field(
        None, min_length=1, max_length=1, description="the layer the block reads"
    )
    expect: Expect | None = Field(None, description="published figures of the whole use")


class Spec(BaseModel):
    """A model: its input, its layers in order, and the figures its source publishes."""

    # defer_build: the union of every kind is built only when a spec fails validate_by_kind
    # (or the JSON Schema is asked for).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    archspec: Literal[1] = Field(description="spec language version")
    name: SpecName = Field(description="identifier of this model variant (letters, digits, _ . -)")
    title: str | None = Field(None, description="human-readable name")
    source: str | None = Field(None, description="where the architecture and its figures come from")
    input: InputSpec = Field(
        description="one sample's shape and element type; the batch is implicit"
    )
    layers: list[AnyLayer] = Field(
        min_length=1,
        description="the layers in order; each reads the previous one unless it names inputs",
    )
    expect: Expect | None = Field(None, description="published whole-model figures")
    blocks: dict[str, BlockDef] | None = Field(
        None, description="reusable blocks of layers, used in layers: with block:"
    )

    # The YAML document this spec came from (positions for diagnostics); None when built in Python.
    _document: Any = PrivateAttr(default=None)

    @property
    def layer_list(self) -> list[Layer]:
        return list(self.layers)

    @property
    def document(self) -> Any:
        return self._document


@functools.cache
def _header() -> type[BaseModel]:
    """Spec's own fields but ``layers``, with the same definitions (built on first use)."""
    fields: Any = {
        name: (field.annotation, field)
        for name, field in Spec.model_fields.items()
        if name != "layers"
    }
    return create_model("SpecHeader", __config__=Spec.model_config, **fields)


def validate_by_kind(data: dict[str, Any]) -> Spec | None:
    """The spec, validating each layer with its own kind's model; None where anything fails.

    None sends the caller to ``Spec.model_validate``, whose errors are the ones
    reported; here a spec that is valid is only validated faster.
    """
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        return None
    built: list[Layer] = []
    try:
        for item in layers:
            tag = item.get("type") if isinstance(item, dict) else None
            kind = LAYER_KINDS.get(tag) if isinstance(tag, str) else None
            if kind is None:
                return None
            built.append(kind.model_validate(item))
        header = _header().model_validate({k: v for k, v in data.items() if k != "layers"})
    except ValidationError:
        return None
    values = {name: getattr(header, name) for name in type(header).model_fields}
    return Spec.model_construct(set(data), **values, layers=built)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of spec version 1, for editors (yaml-language-server) and validators.

    Generated from the same pydantic models that validate specs, so the two
    cannot disagree; the header keys come first so the file reads top-down.
    """
    body = Spec.model_json_schema()
    body.pop("title", None)
    # A layer entry is a layer kind or a block use (uses are expanded before validation).
    use = BlockUse.model_json_schema(by_alias=True)
    use.pop("title", None)
    defs = body.setdefault("$defs", {})
    defs["BlockUse"] = {**use, "$defs": None}
    defs["BlockUse"].pop("$defs")
    items = body["properties"]["layers"]["items"]
    body["properties"]["layers"]["items"] = {"anyOf": [items, {"$ref": "#/$defs/BlockUse"}]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://archspec.dev/schema/spec-v1.json",
        "title": f"archspec spec, version {SPEC_VERSION}",
        **body,
    }
