"""Every layer kind's shape and counting rules, against figures worked out by hand.

Each expected number below is derived in its comment from the formula in
DESIGN.md (or PyTorch's documented size rule), not taken from archspec.
"""

from __future__ import annotations

import pytest

import archspec
from archspec.spec import SpecError


def one_layer(input_shape: list[int], **layer: object) -> archspec.Row:
    """Analyse a one-layer spec and return its row."""
    spec = archspec.loads(
        _yaml(
            {
                "archspec": 1,
                "name": "t",
                "input": {"shape": input_shape},
                "layers": [{"name": "L", **layer}],
            }
        )
    )
    return archspec.analyze(spec).rows[0]


def _yaml(data: object) -> str:
    import json

    return json.dumps(data)  # JSON is YAML


# --- conv2d ------------------------------------------------------------------


def test_conv2d_lenet_c1() -> None:
    r = one_layer([1, 32, 32], type="conv2d", out_channels=6, kernel=5)
    assert r.output == (6, 28, 28)  # 32 − 5 + 1
    assert r.params == 156  # 5·5·1·6 + 6
    assert r.connections == 122_304  # (25 + 1)·6·28·28
    assert r.macs == 117_600  # 25·6·784
    assert r.flops == 235_200
    assert r.output_bytes == 18_816  # 4704 floats × 4 bytes


def test_conv2d_stride_padding() -> None:
    r = one_layer([3, 32, 32], type="conv2d", out_channels=8, kernel=3, stride=2, padding=1)
    assert r.output == (8, 16, 16)  # ⌊(32 + 2 − 3)/2⌋ + 1 = 16
    assert r.params == 224  # 3·3·3·8 + 8
    assert r.macs == 55_296  # 27·8·256


def test_conv2d_dilation() -> None:
    r = one_layer([2, 20, 20], type="conv2d", out_channels=4, kernel=3, dilation=2)
    assert r.output == (4, 16, 16)  # 20 − 2·(3−1) − 1 + 1 = 16
    assert r.field.size == (5, 5)  # 1 + (3−1)·2·1


def test_conv2d_rectangular_kernel_and_padding() -> None:
    r = one_layer(
        [1, 10, 12], type="conv2d", out_channels=2, kernel=[3, 5], padding=[1, 2], stride=[1, 2]
    )
    assert r.output == (2, 10, 6)  # H: 10+2−3+1 = 10; W: ⌊(12+4−5)/2⌋+1 = 6
    assert r.params == 32  # 3·5·1·2 + 2


def test_conv2d_groups() -> None:
    r = one_layer([8, 10, 10], type="conv2d", out_channels=16, kernel=3, groups=4)
    assert r.params == 304  # 3·3·(8/4)·16 + 16
    assert r.connections == (18 + 1) * 16 * 64  # (k²·C_in/g + 1)·C_out·H·W = 19,456
    assert r.macs == 18 * 16 * 64


def test_conv2d_without_bias() -> None:
    r = one_layer([1, 6, 6], type="conv2d", out_channels=2, kernel=3, bias=False)
    assert r.params == 18  # 3·3·1·2
    assert r.connections == 18 * 16  # no bias edge: 9 per output unit, 2·4·4 units


def test_conv2d_same_and_valid_padding() -> None:
    assert one_layer(
        [3, 15, 9], type="conv2d", out_channels=4, kernel=[3, 5], padding="same"
    ).output == (4, 15, 9)
    assert one_layer(
        [3, 15, 9], type="conv2d", out_channels=4, kernel=3, padding="valid"
    ).output == (4, 13, 7)


def test_conv2d_input_maps_lenet_c3() -> None:
    table = [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 0], [5, 0, 1],
             [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 0], [4, 5, 0, 1], [5, 0, 1, 2],
             [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5], [0, 1, 2, 3, 4, 5]]  # fmt: skip
    r = one_layer([6, 14, 14], type="conv2d", out_channels=16, kernel=5, input_maps=table)
    # 6 maps read 3 inputs, 9 read 4, 1 reads 6: 18 + 36 + 6 = 60 kernels of 25 weights.
    assert r.params == 1_516  # 60·25 + 16
    assert r.connections == 151_600  # (1500 + 16)·10·10
    assert r.macs == 150_000  # 1500·100


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            {"kernel": 3, "stride": 2, "padding": "same", "input_maps": [[0]] * 6},
            "padding 'same' with a stride and an uneven total needs a plain convolution",
        ),
        ({"kernel": 3, "groups": 4}, "groups 4 must divide"),
        ({"kernel": 3, "input_maps": [[0]]}, "input_maps has 1 entries but out_channels is 6"),
        ({"kernel": 3, "input_maps": [[0], [1], [2], [0], [1], [9]]}, "reads map 9"),
        ({"kernel": 3, "input_maps": [[0], [1], [2], [0], [1], []]}, "is empty"),
        ({"kernel": 40}, "spatial size of 0"),
    ],
)
def test_conv2d_shape_errors(layer: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        one_layer([3, 32, 32], type="conv2d", out_channels=6, **layer)


def test_conv2d_same_with_a_stride_is_tensorflows() -> None:
    # ⌈32/2⌉ = 16 outputs (tests/test_same_padding.py proves the values against TensorFlow's rule)
    assert one_layer(
        [3, 32, 32], type="conv2d", out_channels=6, kernel=3, stride=2, padding="same"
    ).output == (6, 16, 16)


def test_conv2d_needs_feature_maps() -> None:
    with pytest.raises(SpecError, match="conv2d needs C×H×W feature maps, got 10"):
        one_layer([10], type="conv2d", out_channels=6, kernel=3)


# --- pooling -----------------------------------------------------------------


def test_maxpool_overlapping_alexnet() -> None:
    r = one_layer([96, 55, 55], type="maxpool2d", kernel=3, stride=2)
    assert r.output == (96, 27, 27)  # ⌊(55 − 3)/2⌋ + 1
    assert r.params == 0 and r.macs == 0
    assert r.connections == 629_856  # 9·96·27·27


def test_maxpool_stride_defaults_to_kernel() -> None:
    assert one_layer([6, 28, 28], type="maxpool2d", kernel=2).output == (6, 14, 14)


def test_maxpool_ceil_mode() -> None:
    # floor: ⌊(6−3)/2⌋+1 = 2; ceil: ⌈3/2⌉+1 = 3, and window 3 starts at 4 < 6, so it stays.
    assert one_layer([1, 6, 6], type="maxpool2d", kernel=3, stride=2).output == (1, 2, 2)
    assert one_layer([1, 6, 6], type="maxpool2d", kernel=3, stride=2, ceil_mode=True).output == (
        1,
        3,
        3,
    )
    # 5 with padding 1, k2 s2: ⌈5/2⌉+1 = 4, but window 4 would start at 6 ≥ 5+1 (all padding): 3.
    assert one_layer(
        [1, 5, 5], type="maxpool2d", kernel=2, stride=2, padding=1, ceil_mode=True
    ).output == (1, 3, 3)


def test_pool_padding_limit() -> None:
    with pytest.raises(SpecError, match="more than half"):
        one_layer([1, 8, 8], type="maxpool2d", kernel=2, padding=2)


def test_avgpool() -> None:
    r = one_layer([6, 28, 28], type="avgpool2d", kernel=2, stride=2)
    assert r.output == (6, 14, 14)
    assert r.connections == 4_704  # 4·6·14·14
    assert r.params == 0 and r.macs == 0


def test_adaptive_avgpool_uneven_windows() -> None:
    # 13 → 6: windows [⌊13i/6⌋, ⌈13(i+1)/6⌉) = [0,3) [2,5) [4,7) [6,9) [8,11) [10,13): 6 windows of 3.
    r = one_layer([256, 13, 13], type="adaptive_avgpool2d", output_size=6)
    assert r.output == (256, 6, 6)
    assert r.connections == 256 * 18 * 18  # C · Σ widths_h · Σ widths_w = 82,944


def test_adaptive_avgpool_identity() -> None:
    r = one_layer([256, 6, 6], type="adaptive_avgpool2d", output_size=[6, 6])
    assert r.connections == 9_216  # every window is one pixel


# --- linear and LeNet's layers --------------------------------------------------


def test_linear_f6() -> None:
    r = one_layer([120], type="linear", out_features=84)
    assert r.output == (84,)
    assert r.params == 10_164  # 120·84 + 84
    assert r.connections == 10_164  # (120 + 1)·84
    assert r.macs == 10_080


def test_linear_without_bias_and_leading_axes() -> None:
    r = one_layer([3, 7], type="linear", out_features=5, bias=False)
    assert r.output == (3, 5)
    assert r.params == 35  # 7·5
    assert r.macs == 105  # 7·5 per row, 3 rows


def test_subsample_s2() -> None:
    r = one_layer([6, 28, 28], type="subsample", kernel=2)
    assert r.output == (6, 14, 14)
    assert r.params == 12  # 2·6
    assert r.connections == 5_880  # (4 + 1)·6·14·14
    assert r.macs == 1_176  # 6·14·14


def test_rbf_fixed_and_trainable() -> None:
    fixed = one_layer([84], type="rbf", out_features=10)
    assert (fixed.params, fixed.buffers, fixed.connections, fixed.macs) == (0, 840, 840, 840)
    learned = one_layer([84], type="rbf", out_features=10, trainable=True)
    assert (learned.params, learned.buffers) == (840, 0)


def test_rbf_needs_a_vector() -> None:
    with pytest.raises(SpecError, match="add a flatten layer"):
        one_layer([6, 4, 4], type="rbf", out_features=10)


def test_lrn() -> None:
    r = one_layer([96, 55, 55], type="lrn", size=5)
    assert r.output == (96, 55, 55)
    assert r.connections == 1_452_000  # 5·96·55·55
    assert r.params == 0 and r.macs == 0


# --- elementwise and structural ------------------------------------------------


@pytest.mark.parametrize("kind", ["relu", "sigmoid", "tanh", "scaled_tanh", "softmax", "dropout"])
def test_elementwise_kinds_are_free(kind: str) -> None:
    r = one_layer([4, 5], type=kind)
    assert r.output == (4, 5)
    assert (r.params, r.buffers, r.connections, r.macs) == (0, 0, 0, 0)


def test_flatten() -> None:
    assert one_layer([16, 5, 5], type="flatten").output == (400,)


def test_dropout_probability_must_be_below_one() -> None:
    with pytest.raises(SpecError, match=r"layers\[0\]\.p: expected less than 1"):
        one_layer([4], type="dropout", p=1.0)


def test_softmax_axis_range() -> None:
    with pytest.raises(SpecError, match="axis 2 is out of range"):
        one_layer([10], type="softmax", axis=2)


def _dag(layers: list[dict[str, object]], shape: list[int]) -> archspec.Analysis:
    return archspec.analyze(
        archspec.loads(
            _yaml({"archspec": 1, "name": "d", "input": {"shape": shape}, "layers": layers})
        )
    )


def test_concat_and_add() -> None:
    a = _dag(
        [
            {"name": "a", "type": "conv2d", "out_channels": 4, "kernel": 1},
            {
                "name": "b",
                "type": "conv2d",
                "out_channels": 6,
                "kernel": 3,
                "padding": 1,
                "inputs": ["input"],
            },
            {"name": "cat", "type": "concat", "inputs": ["a", "b"]},
            {"name": "c", "type": "conv2d", "out_channels": 10, "kernel": 1},
            {"name": "sum", "type": "add", "inputs": ["cat", "c"]},
        ],
        [3, 8, 8],
    )
    assert a.row("cat").output == (10, 8, 8)  # 4 + 6 channels
    assert a.row("sum").output == (10, 8, 8)
    assert a.row("cat").connections == 0 and a.row("sum").macs == 0


def test_concat_mismatch_names_both_shapes() -> None:
    with pytest.raises(SpecError, match=r"cannot concatenate 4×8×8 and 6×6×6 along axis 0"):
        _dag(
            [
                {"name": "a", "type": "conv2d", "out_channels": 4, "kernel": 1},
                {
                    "name": "b",
                    "type": "conv2d",
                    "out_channels": 6,
                    "kernel": 3,
                    "inputs": ["input"],
                },
                {"name": "cat", "type": "concat", "inputs": ["a", "b"]},
            ],
            [3, 8, 8],
        )


def test_add_mismatch_names_both_shapes() -> None:
    with pytest.raises(SpecError, match=r"cannot add 4×8×8 and 4×6×6"):
        _dag(
            [
                {"name": "a", "type": "conv2d", "out_channels": 4, "kernel": 1},
                {
                    "name": "b",
                    "type": "conv2d",
                    "out_channels": 4,
                    "kernel": 3,
                    "inputs": ["input"],
                },
                {"name": "s", "type": "add", "inputs": ["a", "b"]},
            ],
            [3, 8, 8],
        )


# --- whole-model figures ---------------------------------------------------------


def test_receptive_fields_lenet() -> None:
    a = archspec.analyze("specs/lenet5-lecun1998.yaml")
    # r_out = r_in + (k−1)·j_in, j_out = j_in·s
    fields = {r.name: (r.field.size[0], r.field.jump[0]) for r in a.rows}
    assert fields["C1"] == (5, 1)
    assert fields["S2"] == (6, 2)  # 5 + 1·1
    assert fields["C3"] == (14, 2)  # 6 + 4·2
    assert fields["S4"] == (16, 4)  # 14 + 1·2
    assert fields["C5"] == (32, 4)  # 16 + 4·4: C5 sees the whole 32×32 input


def test_receptive_fields_alexnet() -> None:
    a = archspec.analyze("specs/alexnet.yaml")
    fields = {r.name: r.field.size[0] for r in a.rows}
    # 11; +2·4 = 19; +4·8 = 51; +2·8 = 67; +2·16 = 99, 131, 163; +2·16 = 195
    assert [fields[n] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")] == [
        11, 19, 51, 67, 99, 131, 163, 195,
    ]  # fmt: skip


def test_peak_activation_memory_lenet() -> None:
    a = archspec.analyze("specs/lenet5-lecun1998.yaml")
    # Input 1·32·32·4 = 4,096 B; C1 6·28·28·4 = 18,816 B; S2 6·14·14·4 = 4,704 B.
    # Running C1 holds input + C1 = 22,912; running S2 holds C1 + S2 = 23,520, the worst step.
    assert a.totals.peak_activation_bytes == 23_520
    assert a.totals.param_bytes == (60_000 + 840) * 4


def test_peak_memory_keeps_skip_connections_alive() -> None:
    a = _dag(
        [
            {"name": "a", "type": "relu"},  # 4·10·10·4 = 1,600 B
            {"name": "b", "type": "relu"},  # 1,600 B
            {"name": "c", "type": "add", "inputs": ["a", "b"]},
        ],
        [4, 10, 10],
    )
    # Step b holds a (needed by c) + b: 3,200; step c holds a + b + c: 4,800.
    assert a.totals.peak_activation_bytes == 4_800


def test_float16_bytes() -> None:
    spec = archspec.loads(
        _yaml(
            {
                "archspec": 1,
                "name": "h",
                "input": {"shape": [3, 4, 4], "dtype": "float16"},
                "layers": [{"name": "L", "type": "conv2d", "out_channels": 2, "kernel": 1}],
            }
        )
    )
    a = archspec.analyze(spec)
    assert a.rows[0].output_bytes == 2 * 16 * 2
    assert a.totals.param_bytes == 8 * 2  # (3·2 + 2) params × 2 bytes


def test_trillion_channels_in_exact_integers() -> None:
    # Nothing is allocated, so this is as cheap as 6 channels (scripts/bench_check.py times it).
    r = one_layer([1, 32, 32], type="conv2d", out_channels=10**12, kernel=5)
    assert r.params == 26 * 10**12  # (25 + 1)·10¹²
    assert r.macs == 25 * 10**12 * 784
    assert r.output_bytes == 10**12 * 784 * 4
