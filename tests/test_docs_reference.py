"""docs/spec-reference.md: generated from the layer classes, complete, and never stale."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

import archspec.docs.reference as reference_module
from archspec.docs import REGENERATE
from archspec.docs.generate import generated_files, stale
from archspec.docs.reference import COMMON_FIELDS, REFERENCE_FILE, reference_markdown
from archspec.layers import LAYER_KINDS, Counts, Layer, Shape
from archspec.lints import all_lints
from archspec.spec.schema import Spec

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def reference() -> str:
    return reference_markdown()


def _section(text: str, kind: str) -> str:
    start = text.index(f"\n#### `{kind}`\n")
    end = text.find("\n#### ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_reference_is_current(reference: str) -> None:
    shipped = (ROOT / REFERENCE_FILE).read_text(encoding="utf-8")
    assert shipped == reference, f"{REFERENCE_FILE} is stale; regenerate it with: {REGENERATE}"


def test_every_kind_has_its_fields_and_formulas(reference: str) -> None:
    assert len(LAYER_KINDS) >= 17
    for kind, cls in LAYER_KINDS.items():
        assert f"| [`{kind}`](#{kind}) |" in reference  # the index links to the section
        section = _section(reference, kind)
        assert f"- **shape:** {cls.shape_rule}\n" in section
        assert f"- **counts:** {cls.count_rule}\n" in section
        assert f"(class `{cls.__name__}`)" in section
        for name, info in cls.model_fields.items():
            if name in COMMON_FIELDS:
                continue
            row = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
            assert (info.description or "") in row


def test_field_rows_show_type_default_and_description(reference: str) -> None:
    conv = _section(reference, "conv2d")
    assert "| `out_channels` | int > 0 | *required* | output feature maps |" in conv
    assert (
        "| `kernel` | int > 0 or list of 2 × int > 0 | *required* | kernel size, int or [h, w] |"
        in conv
    )
    assert "| `bias` | bool | `true` | one trainable bias per output map |" in conv
    assert "one of `same`, `valid` | `0` |" in conv
    assert "| `p` | number in [0, 1) | `0.5` |" in _section(reference, "dropout")
    assert "- **inputs:** 2 or more, named with `inputs:`" in _section(reference, "concat")
    # reST literals in docstrings become Markdown code
    assert "`input_maps` is LeCun 1998's connection table" in conv


def test_top_level_keys_input_expect_and_conventions(reference: str) -> None:
    for key in Spec.model_fields:
        assert f"| `{key}` |" in reference
    for heading in (
        "## Top-level keys",
        "## input",
        "## layers",
        "### `activation:` shorthand",
        "## expect",
        "## Counting conventions",
        "### `inputs:` and the layer graph",
    ):
        assert f"\n{heading}\n" in reference
    assert "`conv2d`, `subsample`, `linear` take `activation:`" in reference
    assert (
        "| `macs` | int ≥ 0 or rounded figure (`15.47G`) | `null` | multiply-accumulates per sample |"
        in reference
    )


def test_a_changed_layer_class_makes_the_docs_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    conv = LAYER_KINDS["conv2d"]
    monkeypatch.setattr(conv, "count_rule", "params = something else")
    assert "- **counts:** params = something else\n" in reference_markdown()
    # a changed counting method changes every card with a convolution
    original = conv.counts

    def counts(self: Layer, shapes: Sequence[Shape], out: Shape) -> Counts:
        c = original(self, shapes, out)  # type: ignore[arg-type]
        return Counts(c.params + 1, c.buffers, c.connections, c.macs)

    monkeypatch.setattr(conv, "counts", counts)
    result = stale(ROOT, generated_files(ROOT))
    assert REFERENCE_FILE in result.changed
    assert "docs/models/lenet5-lecun1998.md" in result.changed
    assert "docs/models/alexnet.md" in result.changed
    assert result.message().endswith(f"Regenerate with: {REGENERATE}")


def test_a_new_kind_gets_a_section(monkeypatch: pytest.MonkeyPatch) -> None:
    class Gelu(Layer):
        """x·Φ(x), the Gaussian error linear unit."""

        type: Literal["gelu"]
        approximate: bool = Field(False, description="use the tanh approximation")

    monkeypatch.setattr(reference_module, "LAYER_KINDS", {**LAYER_KINDS, "gelu": Gelu})
    text = reference_markdown()
    section = _section(text, "gelu")
    assert "x·Φ(x), the Gaussian error linear unit." in section
    assert "| `approximate` | bool | `false` | use the tanh approximation |" in section
    assert "- **counts:** no params, no connections, no MACs" in section


def test_every_lint_is_listed_with_a_proof_that_exists(reference: str) -> None:
    """Each lint's row names its proving test, and that test function exists where it says."""
    lints = all_lints()
    assert {lint.code for lint in lints} >= {"unused-input", "unused-output", "linear-not-flat"}
    for lint in lints:
        path, _, test = lint.proof.partition("::")
        assert f"| `{lint.code}` | " in reference
        assert f"[`{test}`](../{path}) |" in reference
        source = (ROOT / path).read_text(encoding="utf-8")
        assert f"\ndef {test}(" in source, lint.proof
