"""archspec import of Caffe prototxts: the published LeNet and AlexNet, Caffe's pooling rule
proven against a NumPy transcription of Caffe's pooling layer, and located errors."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import archspec
from archspec.importers import import_model, spec_text
from archspec.spec import SpecError

DATA = Path(__file__).parent / "data" / "caffe"
ROOT = Path(__file__).resolve().parent.parent


def imported(path: Path | str) -> archspec.Analysis:
    return archspec.analyze(archspec.loads(spec_text(import_model(str(path)))))


def test_caffe_mnist_lenet() -> None:
    analysis = imported(DATA / "lenet.prototxt")
    # by hand: conv 1→20 5×5, conv 20→50 5×5, fc 800→500, fc 500→10, each with biases
    by_hand = (5 * 5 * 1 * 20 + 20) + (5 * 5 * 20 * 50 + 50) + (800 * 500 + 500) + (500 * 10 + 10)
    assert analysis.totals.params == by_hand == 431_080
    assert [r.output for r in analysis.rows] == [
        (20, 24, 24), (20, 12, 12), (50, 8, 8), (50, 4, 4), (800,), (500,), (10,), (10,)
    ]  # fmt: skip
    assert analysis.rows[5].activation == "relu"  # the in-place ReLU folded into ip1


def test_bvlc_alexnet_in_the_legacy_format_is_the_hand_written_spec() -> None:
    analysis = imported(DATA / "bvlc_alexnet_v1.prototxt")
    assert analysis.totals.params == 60_965_224
    hand = archspec.analyze(archspec.load(ROOT / "specs" / "alexnet-krizhevsky2012.yaml"))
    assert analysis.totals.macs == hand.totals.macs
    assert [r.output for r in analysis.rows if r.type != "flatten"] == [
        r.output for r in hand.rows if r.type != "flatten"
    ]


def caffe_pool(x: np.ndarray, kernel: int, stride: int, pad: int, method: str) -> np.ndarray:
    """Caffe's PoolingLayer::Forward_cpu (pooling_layer.cpp), transcribed for one axis pair."""
    h, w = x.shape[-2:]
    ph = math.ceil((h + 2 * pad - kernel) / stride) + 1
    pw = math.ceil((w + 2 * pad - kernel) / stride) + 1
    if pad:
        if (ph - 1) * stride >= h + pad:
            ph -= 1
        if (pw - 1) * stride >= w + pad:
            pw -= 1
    out = np.zeros((*x.shape[:-2], ph, pw))
    for i in range(ph):
        for j in range(pw):
            hs, ws = i * stride - pad, j * stride - pad
            he, we = min(hs + kernel, h + pad), min(ws + kernel, w + pad)
            size = (he - hs) * (we - ws)  # AVE divides by the window clipped to the padding
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[..., hs:he, ws:we]
            if method == "MAX":
                out[..., i, j] = window.max(axis=(-1, -2))
            else:
                out[..., i, j] = window.sum(axis=(-1, -2)) / size
    return out


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(3, 14),
    kernel=st.integers(1, 5),
    stride=st.integers(1, 4),
    pad=st.integers(0, 2),
    method=st.sampled_from(["MAX", "AVE"]),
)
def test_imported_pooling_computes_what_caffe_computes(
    tmp_path_factory: pytest.TempPathFactory,
    size: int,
    kernel: int,
    stride: int,
    pad: int,
    method: str,
) -> None:
    if pad >= kernel or kernel > size + 2 * pad or pad > kernel // 2 or kernel < stride:
        return  # Caffe refuses pad ≥ kernel; the importer refuses the others, tested below
    path = tmp_path_factory.mktemp("pool") / "p.prototxt"
    path.write_text(
        f'input: "data"\ninput_shape {{ dim: 1 dim: 2 dim: {size} dim: {size} }}\n'
        f'layer {{ name: "p" type: "Pooling" bottom: "data" top: "p"\n'
        f"  pooling_param {{ pool: {method} kernel_size: {kernel} stride: {stride} pad: {pad} }} }}\n",
        encoding="utf-8",
    )
    text = spec_text(import_model(str(path)))
    module = archspec.compile(archspec.loads(text)).double().eval()
    x = np.random.default_rng(size * 100 + kernel).standard_normal((1, 2, size, size))
    got = module(torch.from_numpy(x)).numpy()
    want = caffe_pool(x, kernel, stride, pad, method)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "net.prototxt"
    path.write_text(text, encoding="utf-8")
    return path


HEAD = 'name: "n"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n'


def test_batchnorm_then_scale_is_one_batch_norm(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD + 'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
        "  convolution_param { num_output: 4 kernel_size: 3 bias_term: false } }\n"
        'layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" }\n'
        'layer { name: "sc" type: "Scale" bottom: "c" top: "c" scale_param { bias_term: true } }\n'
        'layer { name: "r" type: "ReLU" bottom: "c" top: "c" }\n',
    )
    model = import_model(str(path))
    assert [(layer["name"], layer["type"]) for layer in model.layers] == [
        ("c", "conv2d"),
        ("bn", "batchnorm2d"),
        ("r", "relu"),  # batchnorm2d takes no activation:, so the ReLU stays a layer
    ]
    analysis = archspec.analyze(archspec.loads(spec_text(model)))
    bn = torch.nn.BatchNorm2d(4)
    assert analysis.rows[1].params == sum(p.numel() for p in bn.parameters())
    assert analysis.rows[1].buffers == sum(b.numel() for b in bn.buffers())


def test_eltwise_and_concat(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + 'layer { name: "a" type: "Convolution" bottom: "data" top: "a" convolution_param { num_output: 3 kernel_size: 1 } }\n'
        'layer { name: "s" type: "Eltwise" bottom: "a" bottom: "data" top: "s" }\n'
        'layer { name: "m" type: "Eltwise" bottom: "s" bottom: "a" top: "m" eltwise_param { operation: PROD } }\n'
        'layer { name: "cat" type: "Concat" bottom: "m" bottom: "data" top: "cat" }\n',
    )
    model = import_model(str(path))
    assert [(layer["type"], layer.get("inputs")) for layer in model.layers] == [
        ("conv2d", None),
        ("add", ["a", "input"]),
        ("mul", ["s", "a"]),
        ("concat", ["m", "input"]),
    ]
    assert archspec.analyze(archspec.loads(spec_text(model))).output_shape == (6, 8, 8)


def test_training_layers_are_skipped_with_a_note(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD
        + 'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 2 } }\n'
        'layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "acc" include { phase: TEST } }\n'
        'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }\n',
    )
    model = import_model(str(path))
    assert model.notes == [
        "skipped Accuracy layer 'acc' (training only)",
        "skipped SoftmaxWithLoss layer 'loss' (training only)",
    ]
    assert "# note: skipped SoftmaxWithLoss layer 'loss' (training only)" in spec_text(model)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'layer { name: "crop" type: "Crop" bottom: "data" top: "crop" }\n',
            "net.prototxt:7:1: error: Caffe layer 'crop' has type 'Crop', which archspec cannot import",
        ),
        (
            'layer { name: "e" type: "Eltwise" bottom: "data" bottom: "data" top: "e" eltwise_param { operation: MAX } }\n',
            "net.prototxt:7:1: error: Caffe layer 'e' (Eltwise) has options no archspec kind expresses",
        ),
        (
            'layer { name: "r" type: "ReLU" bottom: "data" top: "r" relu_param { negative_slope: 0.1 } }\n',
            "net.prototxt:7:1: error: Caffe layer 'r': ReLU with a negative_slope (a leaky ReLU) cannot be imported",
        ),
        (
            'layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { kernel_size: 1 stride: 2 } }\n',
            "net.prototxt:7:1: error: Caffe layer 'p': pooling with a kernel smaller than its stride cannot be imported",
        ),
        (
            'layer { name: "c" type: "Convolution" bottom: "nothing" top: "c" }\n',
            "net.prototxt:7:1: error: layer 'c' reads blob 'nothing', which no earlier layer writes",
        ),
        (
            'layer { name: "c" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 4 kernel_size: 9 } }\n',
            "net.prototxt:7:1: error: Caffe layer 'c': window 9×9 is larger than its 8×8 input",
        ),
        (
            'layer { name: "c" type: "Convolution" \n',
            "net.prototxt:7:7: error: invalid prototxt: missing '}'",
        ),
    ],
)
def test_what_cannot_be_imported_is_a_located_error(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write(tmp_path, HEAD + body)
    with pytest.raises(SpecError) as info:
        import_model(str(path))
    (line,) = [d.render() for d in info.value.diagnostics]
    assert line.replace(str(tmp_path) + "/", "").startswith(message)


def test_a_train_prototxt_without_an_input_shape(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'layer { name: "mnist" type: "Data" top: "data" top: "label" include { phase: TRAIN } }\n'
        'layer { name: "mnist" type: "Data" top: "data" top: "label" include { phase: TEST } }\n',
    )
    with pytest.raises(SpecError) as info:
        import_model(str(path))
    (line,) = [d.render() for d in info.value.diagnostics]
    assert line.endswith(
        "net.prototxt:2:1: error: the net states no input shape (a deploy prototxt has "
        "'input_shape' or an Input layer); import the deploy version of the model"
    )


def test_cli_import_writes_a_spec_that_checks(tmp_path: Path) -> None:
    out = tmp_path / "lenet.yaml"
    cli = [sys.executable, "-m", "archspec.cli.main"]
    proc = subprocess.run(
        [*cli, "import", str(DATA / "lenet.prototxt"), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote {out}: LeNet, 8 layers, 431,080 parameters, output 10\n"
    assert out.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=")
    check = subprocess.run([*cli, "check", str(out), "--strict"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    bad = tmp_path / "bad.prototxt"
    bad.write_text(
        HEAD + 'layer { name: "x" type: "Crop" bottom: "data" top: "x" }\n', encoding="utf-8"
    )
    proc = subprocess.run(
        [*cli, "import", str(bad), "-o", str(tmp_path / "b.yaml")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert not (tmp_path / "b.yaml").exists()
