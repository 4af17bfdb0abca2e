"""The spec language reference (``docs/spec-reference.md``), generated from the code.

Every table in it comes from the objects that define the language: the
top-level keys from :class:`archspec.spec.schema.Spec`, the layer kinds from
:data:`archspec.layers.LAYER_KINDS`, each kind's fields (type, default,
description) from its pydantic ``model_fields`` and JSON Schema, its formulas
from its ``shape_rule`` / ``count_rule`` class variables and its prose from its
docstring. Adding or changing a kind changes the reference on the next
regeneration, and the stale-file test fails until someone regenerates it.
Only the prose that explains the conventions is written here by hand.
"""

from __future__ import annotations

import inspect
import sys
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from archspec.docs import REGENERATE
from archspec.layers import LAYER_KINDS
from archspec.layers.base import RESERVED_NAMES, ROUNDED_PATTERN, Activation, Expect, Layer
from archspec.lints import all_lints
from archspec.spec.schema import SPEC_VERSION, BlockDef, BlockUse, InputSpec, Spec

REFERENCE_FILE = "docs/spec-reference.md"

COMMON_FIELDS = tuple(Layer.model_fields)
"""Fields every kind inherits from :class:`Layer`; documented once, not per kind."""


# --------------------------------------------------------------------------- field tables


def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _type_text(prop: dict[str, Any]) -> str:
    """A short, readable type from a property's JSON Schema (what editors validate against)."""
    if "anyOf" in prop:
        parts = [_type_text(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(parts)
    if "oneOf" in prop:  # the discriminated union of layer kinds
        return "[layer](#layers)"
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return {"Expect": "[expect](#expect)", "InputSpec": "[input](#input)"}.get(name, name)
    if "const" in prop:
        return f"`{prop['const']}`"
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type")
    if kind in ("integer", "number"):
        word = "int" if kind == "integer" else "number"
        lo = ("≥", prop["minimum"]) if "minimum" in prop else None
        lo = ("> ", prop["exclusiveMinimum"]) if "exclusiveMinimum" in prop else lo
        hi = ("<", prop["exclusiveMaximum"]) if "exclusiveMaximum" in prop else None
        hi = ("≤", prop["maximum"]) if "maximum" in prop else hi
        if lo and hi:
            left = "[" if lo[0] == "≥" else "("
            right = "]" if hi[0] == "≤" else ")"
            return f"{word} in {left}{lo[1]}, {hi[1]}{right}"
        if lo:
            return f"{word} {lo[0].strip()} {lo[1]}"
        if hi:
            return f"{word} {hi[0]} {hi[1]}"
        return word
    if kind == "boolean":
        return "bool"
    if kind == "string":
        if prop.get("pattern") == ROUNDED_PATTERN:
            return "rounded figure (`15.47G`)"
        return "name" if "pattern" in prop else "string"
    if kind == "object":
        return "mapping"
    if kind == "array":
        item = _type_text(prop.get("items", {}))
        lo, hi = prop.get("minItems"), prop.get("maxItems")
        if lo is not None and lo == hi:
            return f"list of {lo} × {item}"
        size = ""
        if lo is not None and hi is not None:
            size = f" ({lo} to {hi})"
        elif lo is not None:
            size = f" (at least {lo})"
        return f"list of {item}{size}"
    return "any"


def _default_text(info: FieldInfo) -> str:
    """A default as the YAML a user would write, or *required*."""
    if info.is_required():
        return "*required*"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


# Layer.type is a plain str that each kind narrows to its own literal; say what it means.
_TYPE_FIELD = ("one of the [kinds](#layer-kinds)", "the layer's kind, which decides its other keys")


def _field_table(model: type[BaseModel], names: typing.Iterable[str]) -> str:
    props = _json_schema(model)["properties"]
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for name in names:
        info = model.model_fields[name]
        key = info.alias or name  # the key as a spec writes it (`with`, not `with_`)
        kind, description = _type_text(props[key]), info.description or ""
        if model is Layer and name == "type":
            kind, description = _TYPE_FIELD
        lines.append(f"| `{key}` | {_cell(kind)} | {_default_text(info)} | {_cell(description)} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- layer kinds


def _markdown_doc(text: str | None) -> str:
    """A docstring as Markdown: reST's ``code`` becomes `code`, paragraphs stay paragraphs."""
    return inspect.cleandoc(text or "").replace("``", "`")


def _arity_text(cls: type[Layer]) -> str:
    lo, hi = cls.arity
    if lo == hi:
        return f"exactly {lo}" + (
            " (the previous layer unless `inputs:` names another)" if lo == 1 else ""
        )
    if hi is None:
        return f"{lo} or more, named with `inputs:`"
    return f"{lo} to {hi}, named with `inputs:`"


def _families() -> list[tuple[str, list[tuple[str, type[Layer]]]]]:
    """Kinds grouped by the module that defines them (their family), modules in name order."""
    groups: dict[str, list[tuple[str, type[Layer]]]] = {}
    for kind, cls in LAYER_KINDS.items():
        groups.setdefault(cls.__module__, []).append((kind, cls))
    return sorted(groups.items())


def _family_title(module: str) -> str:
    doc = inspect.getdoc(sys.modules[module]) or module.rsplit(".", 1)[-1]
    return doc.strip().splitlines()[0].rstrip(".")


def _kind_section(kind: str, cls: type[Layer]) -> list[str]:
    own = [n for n in cls.model_fields if n not in COMMON_FIELDS]
    path = cls.__module__.replace(".", "/") + ".py"
    lines = [
        f"#### `{kind}`",
        "",
        _markdown_doc(cls.__doc__),
        "",
        f"- **inputs:** {_arity_text(cls)}",
        f"- **shape:** {cls.shape_rule}",
        f"- **counts:** {cls.count_rule}",
        f"- **torchinfo Mult-Adds:** {cls.mult_adds_torchinfo_rule}",
        f"- **training:** {cls.train_rule} ([conventions](training.md))",
        f"- **defined in:** `{path}` (class `{cls.__name__}`)",
        "",
    ]
    if own:
        lines += [_field_table(cls, own), ""]
    else:
        lines += ["No fields besides the [common ones](#fields-every-layer-has).", ""]
    return lines


def _kinds_index() -> list[str]:
    lines = ["| kind | family | what it is |", "|---|---|---|"]
    for module, kinds in _families():
        for kind, cls in kinds:
            summary = _markdown_doc(cls.__doc__).split("\n\n")[0].replace("\n", " ")
            lines.append(
                f"| [`{kind}`](#{kind}) | {module.rsplit('.', 1)[-1]} | {_cell(summary)} |"
            )
    return lines


# --------------------------------------------------------------------------- the page

_INTRO = """\
A spec is a YAML file that declares every layer of one model. This page lists
everything a version-{version} spec may contain. Editors that speak
[yaml-language-server](https://github.com/redhat-developer/yaml-language-server)
complete and check specs against the [JSON Schema](schema/archspec-spec-v{version}.json) when
the file's first line names it:

```yaml
# yaml-language-server: $schema=../docs/schema/archspec-spec-v{version}.json
```

A minimal spec:

```yaml
archspec: {version}
name: tiny-mlp
input: {{shape: [1, 28, 28]}}
layers:
  - {{name: flatten, type: flatten}}
  - {{name: fc1, type: linear, out_features: 10}}
```

New to archspec? The [tutorial](tutorial.md) writes a spec from scratch."""

_INPUTS = """\
### `inputs:` and the layer graph

Layers run in the order of the file, and by default each one reads the output
of the layer before it (the first layer reads `input`). A layer that names
`inputs: [a, b]` reads those instead: any *earlier* layer, or `input`, the
model's input. That makes a spec a directed acyclic graph; `concat` and `add`
take two or more inputs, every other kind exactly one. The model's output is
the last layer of the file; a layer whose output nobody reads is reported as a
warning. The layers are analysed in a topological order that keeps the file's
order wherever the edges allow.

```yaml
  - {{name: pool1, type: maxpool2d, kernel: 2}}
  - {{name: branch_a, type: conv2d, out_channels: 16, kernel: 1, inputs: [pool1]}}
  - {{name: branch_b, type: conv2d, out_channels: 16, kernel: 3, padding: 1, inputs: [pool1]}}
  - {{name: merged, type: concat, inputs: [branch_a, branch_b]}}
```

Layer names are identifiers (letters, digits and `_`, not starting with a
digit, at most 64 characters) and unique within the spec; they become the
PyTorch submodules' and ONNX values' names. Reserved: {reserved}."""

_ACTIVATION = """\
### `activation:` shorthand

{kinds} take `activation:` ({values}): the activation applied to the layer's
output, as PyTorch code writes `F.relu(self.conv1(x))`. It adds no parameters,
connections or MACs, and the tables show it as `conv2d+relu`. Write a separate
layer of that kind instead when another layer must read the value *before*
the activation."""

_BLOCKS = """\
A network that repeats itself (ResNet's stages, GoogLeNet's inceptions)
defines a block once under `blocks:` and uses it in `layers:` with `block:`.
A block's layers are written like the spec's own, with `$param` for the value
of one of its `params` (given by the use's `with:`, else the default; a
default of `~` means the use must give it) and `input` for the block's input
(the layer before the use, or the one its `inputs:` names). The block's output
is its last layer, and a later layer reads it by the use's name.

Blocks are expanded when the spec is loaded: every layer gets a dotted name,
`use.layer`, or with `repeat: N` the copies `use.0.layer` … `use.N-1.layer`,
as PyTorch names submodules, so the compiled module's weights load by name.
Blocks may use other blocks, never themselves (directly or in a cycle). A
diagnostic about an expanded layer points at the line in the block and names
the use (`[in block 'basic' used as 'layer1.0' at r.yaml:14:5]`). `expect:` on a
use checks the figures of all its layers added up and the output of the last;
`archspec check --depth N` folds the table by the first N parts of the names.

```yaml
blocks:
  basic:
    params: {channels: ~, stride: 1}
    layers:
      - {name: conv1, type: conv2d, out_channels: $channels, kernel: 3, stride: $stride, padding: 1, activation: relu}
      - {name: conv2, type: conv2d, out_channels: $channels, kernel: 3, padding: 1}
      - {name: add, type: add, inputs: [conv2, input]}
      - {name: relu, type: relu}
layers:
  - {name: stem, type: conv2d, out_channels: 16, kernel: 3, padding: 1, activation: relu}
  - {name: layer1, block: basic, repeat: 2, with: {channels: 16}}
```"""

_EXPECT = """\
Each layer and the model may carry `expect:` with any of these keys: the
figures that the model's source publishes. `archspec check` compares each with
what it computes; a mismatch is an error that shows both figures (exit code 1).
On a layer the figures are that layer's; on the model they are the totals, and
`output` is the model's output shape. Where a source prints a figure rounded
(torchvision's "num_params" is exact, its "GFLOPS" is not), write it as printed
with its unit, K, M, G or T: `macs: 15.47G` holds when the computed figure lies
within half a unit of the last printed digit (15.465·10⁹ to 15.475·10⁹)."""

_CONVENTIONS = """\
## Counting conventions

Every figure is per sample (batch 1) and an exact integer: shapes and counts
are Python ints, so a spec with 10¹² channels is analysed, never allocated.
For a convolution with a k_h×k_w kernel, C_in input maps, C_out output maps of
H×W and g groups:

| figure | definition | conv2d | linear (in → out) |
|---|---|---|---|
| params | trainable elements | k_h·k_w·C_in/g·C_out + C_out (bias) | in·out + out |
| buffers | non-trainable state (LeNet's fixed RBF vectors) | 0 | 0 |
| connections | LeCun et al. 1998: the inputs of every output unit, the bias counted as one, summed over the output units | (k_h·k_w·C_in/g + 1)·C_out·H·W | (in + 1)·out |
| macs | multiply-accumulates of the weights, the bias not counted (fvcore's "flops"; *not* torchinfo's "Mult-Adds") | k_h·k_w·C_in/g·C_out·H·W | in·out |
| flops | 2·macs | | |
| mult_adds_torchinfo | torchinfo's "Mult-Adds" of the compiled module (`total_mult_adds` of `torchinfo.summary` at batch 1), given to compare with it | (k_h·k_w·C_in/g + 1)·C_out·H·W | in·out + out |

Weight sharing is why connections and parameters differ: a convolution's
kernel is one set of weights used at every output position, so it has few
parameters but many connections. With an `input_maps` table, C_in/g is
replaced, output map by output map, by the number of maps it reads. Windows
without weights (pooling) have connections but no MACs; elementwise and
structural layers (activations, dropout, flatten, concat, add, softmax) have
neither. Each kind's own rule is listed with the kind below.

**torchinfo's "Mult-Adds" are not `macs`.** torchinfo (1.8) does not count
arithmetic: for every leaf module that runs, it multiplies the elements of each
parameter named `weight` or `bias` by the batch size, and, when the module's
class name contains "Conv", also by the output's spatial positions; buffers,
parameters with other names and modules without parameters count 0, and its
total adds up the leaf modules only. So it counts a bias as one multiply-add
per output position: torchvision's AlexNet has 714,188,480 `macs` but
714,682,664 torchinfo Mult-Adds, the difference being its convolution biases
at every output position (484,992) and its fully connected biases (9,192). A
`linear` layer counts its parameters once per sample even when it runs on
every row of a larger input; LeNet's `subsample` counts its 2·C parameters
once (its class name lacks "Conv"), its `rbf` 0 (the centres are a buffer, or a
parameter named `centres`), and a connection table (`input_maps`) counts only
its connected kernels, although the module runs them as a dense convolution.
`archspec check --format json` gives torchinfo's figure as
`mult_adds_torchinfo` for every layer and in the totals, per sample: torchinfo
reports it times the batch. The `activation:` shorthand runs inside the layer
without a module of its own, so it adds nothing to either figure.

**Memory.** A layer's *memory* is the bytes of its output at the input's
dtype; *weights* are the bytes of parameters and buffers; *peak activation
memory* is the largest sum of live tensors while the layers run one after
another in the analysis order (a tensor lives until its last reader has run).

**Training.** `archspec check --train` adds one training step at a batch:
each layer's backward FLOPs (the input gradient's and the weights', 2 × their
MACs, counted like the forward's; the first layer computes no input gradient)
and the bytes autograd saves for the backward pass (what PyTorch keeps for the
kind, each storage once); the totals add the weights, gradients and optimizer
state and the peak of the step. Each kind states its rule below; the step,
the precisions and LeNet-5 worked by hand are in [training.md](training.md).

**Receptive field.** For each layer, the size r of the input window that one
output pixel sees and the jump j (input pixels between neighbouring outputs):
through a window of kernel k, stride s and dilation d,
r_out = r_in + (k − 1)·d·j_in and j_out = j_in·s; elementwise layers keep
both; a layer with several inputs takes the largest."""


_LINTS = """\
## Lints

`archspec check` warns about specs that are legal but suspicious; `--strict`
makes every warning an error (exit code 1). A warning is a claim about the
model, so each lint names the test that proves its claim against PyTorch. The
id is the diagnostic's `code` in `archspec check --format json`."""


def _lints_table() -> list[str]:
    lines = ["| id | warns when | proved by |", "|---|---|---|"]
    for lint in all_lints():
        path, _, test = lint.proof.partition("::")
        lines.append(f"| `{lint.code}` | {_cell(lint.summary)} | [`{test}`](../{path}) |")
    return lines


def reference_markdown() -> str:
    """The whole of ``docs/spec-reference.md``."""
    act_kinds = [k for k, cls in LAYER_KINDS.items() if "activation" in cls.model_fields]
    act_values = typing.get_args(Activation)
    reserved = ", ".join(f"`{n}`" for n in sorted(RESERVED_NAMES))
    lines = [
        f"<!-- Generated from the layer classes by archspec.docs.reference; do not edit. "
        f"Regenerate: {REGENERATE} -->",
        f"# Spec language reference (version {SPEC_VERSION})",
        "",
        _INTRO.format(version=SPEC_VERSION),
        "",
        "Contents: [top-level keys](#top-level-keys) · [input](#input) · [layers](#layers) · "
        "[blocks](#blocks) · [expect](#expect) · [counting conventions](#counting-conventions) · "
        "[lints](#lints) · [layer kinds](#layer-kinds)",
        "",
        "## Top-level keys",
        "",
        _markdown_doc(Spec.__doc__),
        "",
        _field_table(Spec, Spec.model_fields),
        "",
        "## input",
        "",
        _markdown_doc(InputSpec.__doc__),
        "",
        _field_table(InputSpec, InputSpec.model_fields),
        "",
        "## layers",
        "",
        "A list of mappings, one per layer; `type` chooses the [kind](#layer-kinds), "
        "which decides the other keys. Unknown keys are errors.",
        "",
        "### Fields every layer has",
        "",
        _field_table(Layer, COMMON_FIELDS),
        "",
        _INPUTS.format(reserved=reserved),
        "",
        _ACTIVATION.format(
            kinds=", ".join(f"`{k}`" for k in act_kinds),
            values=", ".join(f"`{v}`" for v in act_values),
        ),
        "",
        "## blocks",
        "",
        _BLOCKS,
        "",
        "### A block's definition",
        "",
        _field_table(BlockDef, BlockDef.model_fields),
        "",
        "### A use of a block in `layers:`",
        "",
        _field_table(BlockUse, BlockUse.model_fields),
        "",
        "## expect",
        "",
        _markdown_doc(Expect.__doc__),
        "",
        _EXPECT,
        "",
        _field_table(Expect, Expect.model_fields),
        "",
        "```yaml",
        "  - {name: C1, type: conv2d, out_channels: 6, kernel: 5,",
        "     expect: {output: [6, 28, 28], params: 156, connections: 122304}}",
        "```",
        "",
        _CONVENTIONS,
        "",
        _LINTS,
        "",
        *_lints_table(),
        "",
        "## Layer kinds",
        "",
        *_kinds_index(),
        "",
    ]
    for module, kinds in _families():
        lines += [f"### {_family_title(module)}", ""]
        for kind, cls in kinds:
            lines += _kind_section(kind, cls)
    return "\n".join(lines).rstrip("\n") + "\n"
