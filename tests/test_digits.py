"""A short run of examples/train_digits.py: the compiled LeNet really learns.

The full run (20 epochs on all 1,797 digits, ≥95 % test accuracy) is in
docs/pytorch.md; here a stratified subset of 600 images and six epochs must
take the loss down and the accuracy well above the 10 % of guessing.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_digits.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread() -> Iterator[None]:
    """The example's default: one thread is fastest for LeNet on shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_short_training_run_learns(example: ModuleType) -> None:
    result = example.train(epochs=6, lr=3e-3, batch_size=16, limit=600, seed=0)
    assert result.tested == 120  # 20 % of the 600-image subset
    assert len(result.losses) == len(result.accuracies) == 6
    # Cross-entropy starts near ln 10 ≈ 2.30 (a uniform guess) and must fall well below it.
    assert result.losses[0] == pytest.approx(2.3, abs=0.15)
    assert result.losses[-1] < result.losses[0] - 0.5
    assert result.accuracies[-1] > result.accuracies[0]
    assert result.accuracy > 0.5


def test_data_is_resized_standardised_and_split(example: ModuleType) -> None:
    x_train, x_test, y_train, y_test = example.load_data((32, 32), seed=0)
    assert x_train.shape == (1437, 1, 32, 32) and x_test.shape == (360, 1, 32, 32)
    assert abs(x_train.mean().item()) < 1e-5 and x_train.std().item() == pytest.approx(1.0)
    assert torch.bincount(y_test).tolist() == [36, 36, 35, 37, 36, 37, 36, 36, 35, 36]  # stratified
    assert len(y_train) + len(y_test) == 1797


def test_cli_refuses_a_spec_the_digits_do_not_fit(
    example: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    alexnet = EXAMPLE.parent.parent / "specs" / "alexnet.yaml"
    assert example.main(["--spec", str(alexnet), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1-channel image input and 10 outputs" in err
