"""Bad input to ``export`` and ``run``: one clear line on stderr, exit 2, nothing partial left."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from archspec.cli.main import main
from archspec.onnx.model import ModelFileError, load_model, model_info
from archspec.runtime.providers import probe

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5-lecun1998.yaml"


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def lenet_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "lenet.onnx"
    assert main(["export", str(LENET), "-o", str(path)]) == 0
    return path


@pytest.mark.parametrize(
    ("name", "cut"),
    [("half", 0.5), ("tail", -7), ("head", 12), ("empty", 0)],
)
def test_truncated_onnx(
    name: str, cut: float, lenet_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = lenet_onnx.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    bad = tmp_path / f"{name}.onnx"
    bad.write_bytes(data[:n])
    code, _, err = cli(capsys, "run", bad, "--provider", "cpu")
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"archspec: error: {bad}: not a valid ONNX model")
    assert "truncated or corrupt" in line


def test_corrupt_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "noise.onnx"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    code, _, err = cli(capsys, "run", bad, "--provider", "cpu")
    assert code == 2 and "not a valid ONNX model" in one_error_line(err)
    code, _, err = cli(capsys, "run", tmp_path / "missing.onnx")
    assert code == 2 and one_error_line(err).endswith("missing.onnx: no such file")


def test_load_model_checks_structure(lenet_onnx: Path, tmp_path: Path) -> None:
    model = onnx.load(lenet_onnx)
    del model.opset_import[:]
    onnx.save(model, tmp_path / "noopset.onnx")
    with pytest.raises(ModelFileError, match="not a valid ONNX model"):
        load_model(tmp_path / "noopset.onnx")
    info = model_info(load_model(lenet_onnx))
    assert (info.input_name, info.input_dtype, info.sample_shape) == (
        "input",
        "float32",
        (1, 32, 32),
    )
    assert isinstance(info.batch, str) and info.output_name == "OUTPUT"
    assert info.layers == ("C1", "S2", "C3", "S4", "C5", "flatten", "F6", "OUTPUT")


def test_input_of_wrong_shape_dtype_or_format(
    lenet_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        "shape.npy": (
            np.zeros((2, 3, 32, 32), np.float32),
            "has shape [2, 3, 32, 32]; the model takes [N, 1, 32, 32]",
        ),
        "dtype.npy": (
            np.zeros((2, 1, 32, 32), np.float64),
            "holds float64 values; the model takes float32",
        ),
        "ints.npy": (np.zeros((1, 32, 32), np.int64), "holds int64 values"),
    }
    for file, (array, message) in cases.items():
        np.save(tmp_path / file, array)
        code, _, err = cli(capsys, "run", lenet_onnx, "--input", tmp_path / file)
        assert code == 2 and message in one_error_line(err), file
    (tmp_path / "text.npy").write_text("not numpy")
    code, _, err = cli(capsys, "run", lenet_onnx, "--input", tmp_path / "text.npy")
    assert code == 2 and "not a readable .npy array" in one_error_line(err)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = cli(capsys, "run", lenet_onnx, "--input", tmp_path / "obj.npy")
    assert code == 2 and "not a readable .npy array" in one_error_line(err)
    code, _, err = cli(capsys, "run", lenet_onnx, "--input", tmp_path / "nothing.npy")
    assert code == 2 and one_error_line(err).endswith("nothing.npy: no such file")
    np.save(tmp_path / "four.npy", np.zeros((4, 1, 32, 32), np.float32))
    code, _, err = cli(capsys, "run", lenet_onnx, "--input", tmp_path / "four.npy", "--batch", "2")
    assert code == 2 and "holds a batch of 4, but --batch is 2" in one_error_line(err)


def test_one_sample_input_is_a_batch_of_one(
    lenet_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "one.npy", np.zeros((1, 32, 32), np.float32))
    code, out, err = cli(
        capsys, "run", lenet_onnx, "--input", tmp_path / "one.npy", "--provider", "cpu"
    )
    assert (code, err) == (0, "") and "output: OUTPUT float32 [1, 10]" in out


def test_unknown_and_unusable_providers(
    lenet_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "run", lenet_onnx, "--provider", "rocm")
    assert code == 2 and "invalid choice: 'rocm'" in one_error_line(err)
    reason = probe()["cuda"]
    if reason is None:
        pytest.skip("CUDA is usable here")
    code, out, err = cli(capsys, "run", lenet_onnx, "--provider", "cuda")
    assert code == 2 and out == ""
    assert one_error_line(err) == (
        f"archspec: error: provider cuda is not usable on this machine: {reason}; "
        "use --provider auto to run on the best available one"
    )


def test_bad_numbers_and_misplaced_options(
    lenet_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv, message in [
        (("--batch", "0"), "--batch must be at least 1, not 0"),
        (("--top-k", "11"), "--top-k 11 exceeds the 10 values of each sample's output"),
        (("--fp16",), "--fp16 applies when MODEL is a spec"),
        (("--weights", "w.pt"), "--weights with a .onnx MODEL only serves --verify"),
    ]:
        code, out, err = cli(capsys, "run", lenet_onnx, "--provider", "cpu", *argv)
        assert code == 2 and message in one_error_line(err), argv
        if argv[0] != "--top-k":  # refused before anything is printed
            assert out == ""
    code, out, err = cli(capsys, "run", LENET, "--spec", LENET)
    assert (code, out) == (2, "") and "--spec is for a .onnx MODEL" in one_error_line(err)


def test_unwritable_export_paths_leave_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "export", LENET, "-o", tmp_path / "missing" / "m.onnx")
    assert code == 2 and "directory" in one_error_line(err) and "does not exist" in err
    code, _, err = cli(capsys, "export", LENET, "-o", tmp_path)
    assert code == 2 and "is a directory" in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_bad_spec_and_weights_for_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text(
        "archspec: 1\nname: x\ninput: {shape: [1, 4, 4]}\nlayers: []\n"
    )
    code, _, err = cli(capsys, "export", tmp_path / "bad.yaml", "-o", tmp_path / "x.onnx")
    assert code == 2 and "layers" in err and "Traceback" not in err
    (tmp_path / "w.pt").write_bytes(b"garbage, not a pickle")
    code, _, err = cli(
        capsys, "export", LENET, "-o", tmp_path / "x.onnx", "--weights", tmp_path / "w.pt"
    )
    assert code == 2 and "cannot read weights" in one_error_line(err)
    code, _, err = cli(
        capsys,
        "export",
        LENET,
        "-o",
        tmp_path / "x.onnx",
        "--seed",
        "1",
        "--weights",
        tmp_path / "w.pt",
    )
    assert code == 2 and "not allowed with argument" in one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "w.pt"]
