"""Train a compiled LeNet-5 on scikit-learn's handwritten digits.

The point is that ``archspec.compile`` gives an ordinary, trainable PyTorch
module: nothing here knows the architecture except through the spec. The
data set is bundled with scikit-learn (1,797 grey 8×8 digits, no download);
each image is scaled up to the spec's input size with bilinear interpolation.

    python examples/train_digits.py                      # d2l LeNet, 28×28, ≥95 % in seconds
    python examples/train_digits.py --spec specs/lenet5-lecun1998.yaml

The split (80/20, stratified), the weights and the batch order all follow
``--seed``, so a run is repeatable on the same machine. Sigmoid LeNets train
slowly with plain SGD (the sigmoid's gradient is at most 1/4), so this uses
Adam. For the 1998 LeNet, whose RBF output is a squared distance per class,
the logits are the negated distances: the nearest centre wins.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import archspec

DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "specs" / "lenet5-d2l.yaml"


@dataclass
class Result:
    """What a run produced: per-epoch training loss and test accuracy, and the totals."""

    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    accuracies: list[float] = field(default_factory=list)  # test accuracy after each epoch
    correct: int = 0
    tested: int = 0
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.tested if self.tested else 0.0


def load_data(
    size: tuple[int, int], seed: int, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits as standardised [N, 1, H, W] floats at the model's input size, split 80/20."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    if limit is not None:  # a stratified subset keeps every class for short runs
        keep, _ = train_test_split(
            range(len(labels)), train_size=limit, stratify=labels, random_state=seed
        )
        images, labels = images[keep], labels[keep]
    images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=seed
    )
    # Standardise with the training set's statistics: sigmoid units start in their
    # steep middle instead of saturated, which shortens the initial plateau.
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


def logits_of(model: nn.Module, x: torch.Tensor, rbf_output: bool) -> torch.Tensor:
    out: torch.Tensor = model(x)
    return -out if rbf_output else out


def train(
    spec_path: str | Path = DEFAULT_SPEC,
    epochs: int = 20,
    lr: float = 3e-3,
    batch_size: int = 32,
    seed: int = 0,
    limit: int | None = None,
    log: bool = False,
) -> Result:
    """Compile the spec, train it with Adam on the digits, and return losses and accuracies."""
    spec = archspec.load(spec_path)
    analysis = archspec.analyze(spec)
    channels, height, width = analysis.input_shape
    if channels != 1 or analysis.output_shape != (10,):
        raise ValueError(
            f"{spec.name} takes {list(analysis.input_shape)} and gives {list(analysis.output_shape)}; "
            "the digits need a 1-channel image input and 10 outputs"
        )
    rbf_output = analysis.rows[-1].type == "rbf"

    torch.manual_seed(seed)
    x_train, x_test, y_train, y_test = load_data((height, width), seed, limit)
    model = archspec.compile(spec, seed=seed)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)

    result = Result()
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for batch in torch.randperm(len(y_train), generator=order).split(batch_size):
            loss = F.cross_entropy(logits_of(model, x_train[batch], rbf_output), y_train[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        result.losses.append(total / len(y_train))
        result.correct = evaluate(model, x_test, y_test, rbf_output)
        result.tested = len(y_test)
        result.accuracies.append(result.accuracy)
        if log:
            print(
                f"epoch {epoch + 1:2d}: loss {result.losses[-1]:.4f}, "
                f"test accuracy {100 * result.accuracy:.1f} %"
            )
    result.seconds = time.perf_counter() - start
    return result


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rbf_output: bool) -> int:
    """Correctly classified test samples, in eval mode (dropout off) without autograd."""
    model.eval()
    with torch.no_grad():
        predicted = logits_of(model, x, rbf_output).argmax(dim=1)
    return int((predicted == y).sum())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(DEFAULT_SPEC), help="a LeNet spec (1-channel input)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="use a stratified subset of this many images")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: a LeNet batch is too small to split, "
        "and threads that share busy cores wait on each other)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        result = train(
            args.spec, args.epochs, args.lr, args.batch_size, args.seed, args.limit, log=True
        )
    except (archspec.SpecError, ValueError) as exc:
        print(f"train_digits: {exc}", file=sys.stderr)
        return 2
    print(
        f"test accuracy {100 * result.accuracy:.1f} % ({result.correct}/{result.tested}) "
        f"after {args.epochs} epochs in {result.seconds:.1f} s "
        f"on {args.threads} CPU thread{'s' if args.threads != 1 else ''}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
