"""Spec version 1 as pydantic models.

The layer list is a union of every registered kind, discriminated on
``type``; that one definition gives validation, the error locations and the
JSON Schema that editors use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from archspec.layers import LAYER_KINDS
from archspec.layers.base import Expect, Layer, PositiveInt, SpecName
from archspec.vocab import DTypeName

SPEC_VERSION = 1

if TYPE_CHECKING:
    AnyLayer = Layer
else:
    AnyLayer = Annotated[Union[tuple(LAYER_KINDS.values())], Field(discriminator="type")]  # noqa: UP007


class InputSpec(BaseModel):
    """One sample's input; the batch axis is implicit."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    shape: list[PositiveInt] = Field(
        min_length=1, max_length=8, description="per-sample shape, channels first"
    )
    dtype: DTypeName = Field("float32", description="element type")


class Spec(BaseModel):
    """A model: its input, its layers in order, and the figures its source publishes."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

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

    # The YAML document this spec came from (positions for diagnostics); None when built in Python.
    _document: Any = PrivateAttr(default=None)

    @property
    def layer_list(self) -> list[Layer]:
        return list(self.layers)

    @property
    def document(self) -> Any:
        return self._document


def json_schema() -> dict[str, Any]:
    """The JSON Schema of spec version 1, for editors (yaml-language-server) and validators.

    Generated from the same pydantic models that validate specs, so the two
    cannot disagree; the header keys come first so the file reads top-down.
    """
    body = Spec.model_json_schema()
    body.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://archspec.dev/schema/spec-v1.json",
        "title": f"archspec spec, version {SPEC_VERSION}",
        **body,
    }
