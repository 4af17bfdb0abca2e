"""The export's check of the written file (archspec/onnx/wire.py) and its streamed weights.

``check_file`` runs ``onnx.checker``'s full check on the model read back from the
file with the large tensors' bytes left there: the copy it checks must be the file's
model exactly (its cut tensors' bytes where it says they are), every tensor it does
not cut must reach the checker whole, and a file that the checker refuses must be
refused. The seeded weights are drawn piece by piece: the pieces' size must change
no number.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import archspec
from archspec.onnx import native, wire
from archspec.onnx.native import export_native, seeded_state

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "specs" / "lenet5-lecun1998.yaml"
D2L = ROOT / "specs" / "lenet5-d2l.yaml"


def _with_bytes_back(copy: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    """The checked copy with each cut tensor's bytes read from where it points."""
    data = path.read_bytes()
    for tensor in copy.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            where = {e.key: e.value for e in tensor.external_data}
            assert where["location"] == path.name
            start, n = int(where["offset"]), int(where["length"])
            tensor.raw_data = data[start : start + n]
            tensor.ClearField("external_data")
            tensor.ClearField("data_location")
    return copy


@pytest.mark.parametrize("spec", [LENET, D2L], ids=lambda p: p.stem)
@pytest.mark.parametrize("fp16", [False, True])
def test_checked_copy_is_the_file_model(spec: Path, fp16: bool, tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    export_native(archspec.load(spec), path, fp16=fp16)
    data, cuts = wire.read_back(path)
    assert cuts, "no tensor above the threshold: the test proves nothing"
    assert len(data) < path.stat().st_size - sum(c.length for c in cuts) + 1024
    copy = onnx.ModelProto()
    copy.ParseFromString(data)
    assert _with_bytes_back(copy, path) == onnx.load(os.fspath(path))
    kept = [t.name for t in copy.graph.initializer if t.name not in {c.name for c in cuts}]
    assert all(
        len(t.raw_data) <= wire.STRIP_ABOVE
        for t in onnx.load(path).graph.initializer
        if t.name in kept
    )


def test_check_leaves_no_file_behind(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    export_native(archspec.load(D2L), path)
    assert wire.check_file(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_through_a_symlinked_directory(tmp_path: Path) -> None:
    """The checker canonicalizes the copy's directory and the file's: a link on the way is
    no escape from the model's directory."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    path = tmp_path / "link" / "m.onnx"
    export_native(archspec.load(D2L), path)
    assert wire.check_file(path)


def test_name_with_dots_is_checked_whole(tmp_path: Path) -> None:
    """The checker refuses an external location holding "..": the file is checked as it is."""
    path = tmp_path / "m..v2.onnx"
    export_native(archspec.load(D2L), path)
    assert wire.check_file(path) == []


def _model(raw: bytes, dims: list[int], **extra: object) -> onnx.ModelProto:
    weight = onnx.TensorProto(name="w", data_type=onnx.TensorProto.FLOAT, dims=dims, raw_data=raw)
    for key, value in extra.items():
        getattr(weight, key).extend(value)  # type: ignore[arg-type]
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, dims[0]])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, dims[1]])],
        [weight],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def test_a_plain_model_passes_with_its_weight_cut(tmp_path: Path) -> None:
    raw = np.ones((256, 128), np.float32).tobytes()
    cuts = wire.check_file(_save(_model(raw, [256, 128]), tmp_path / "ok.onnx"))
    assert [(c.name, c.length) for c in cuts] == [("w", len(raw))]


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("short", "too small"),  # raw_data shorter than its dims: not cut, the checker sees it
        ("two value fields", "one and only one value field"),
        ("shape", "MatMul"),  # shape inference (strict) fails on the header alone
    ],
)
def test_what_the_checker_refuses_is_refused(case: str, says: str, tmp_path: Path) -> None:
    raw = np.ones((256, 128), np.float32).tobytes()
    if case == "short":
        model = _model(raw[:-4], [256, 128])
    elif case == "two value fields":
        model = _model(raw, [256, 128], float_data=[1.0])
    else:
        model = _model(raw, [256, 128])
        model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 255
    path = _save(model, tmp_path / "bad.onnx")
    with pytest.raises(Exception, match=says):
        onnx.checker.check_model(os.fspath(path), full_check=True)  # the reference
    with pytest.raises(Exception, match=says):
        wire.check_file(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


@pytest.mark.parametrize("cut", [1, 100, 5000])
def test_a_truncated_file_is_refused(cut: int, tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    export_native(archspec.load(D2L), path)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises((wire.WireError, onnx.checker.ValidationError)):
        wire.check_file(path)


def test_broken_framing_is_an_export_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that frames a tensor wrongly is caught by the read-back, and no file stays."""
    real = native._write_tensor

    def short(fh, tensor, pieces=(), n=0):  # type: ignore[no-untyped-def]
        real(fh, tensor, pieces, n)
        if n:
            fh.seek(-1, os.SEEK_CUR)
            fh.truncate()

    monkeypatch.setattr(native, "_write_tensor", short)
    with pytest.raises(native.ExportError, match=r"not a well-formed model|fails onnx\.checker"):
        export_native(archspec.load(D2L), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Seeded weights, drawn a piece at a time.


@pytest.mark.parametrize("chunk", [7, 1000])
def test_pieces_change_no_number(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces smaller than a row (a bigger buffer then) and of several rows give the same
    tensors as one piece: LeNet-1998 has per-row bounds (the connection table), ±1 centres."""
    spec = archspec.load(LENET)
    monkeypatch.setattr(native, "CHUNK", 1 << 22)
    whole = seeded_state(spec, 5, "float32")
    monkeypatch.setattr(native, "CHUNK", chunk)
    pieces = seeded_state(spec, 5, "float32")
    assert whole.keys() == pieces.keys()
    for key, value in whole.items():
        np.testing.assert_array_equal(pieces[key], value, err_msg=key)


def test_export_holds_the_seeded_tensors(tmp_path: Path) -> None:
    """The file's tensors are seeded_state's (what `run --verify` draws again), inline
    and as external data alike."""
    spec = archspec.load(LENET)
    state = seeded_state(spec, 2, "float16")
    for external in (False, True):
        path = tmp_path / f"{external}.onnx"
        export_native(spec, path, seed=2, fp16=True, external=external)
        model = onnx.load(os.fspath(path))
        got = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        for key, value in state.items():
            assert got[key].dtype == np.float16
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
