"""archspec diff: the same network however it is written, and what differs, with both figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "archspec.cli.main"]
KRIZHEVSKY = str(ROOT / "specs" / "alexnet-krizhevsky2012.yaml")
TORCHVISION = str(ROOT / "specs" / "alexnet-torchvision.yaml")
BVLC = str(ROOT / "tests" / "data" / "caffe" / "bvlc_alexnet_v1.prototxt")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True)


def diff_json(a: str, b: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = run("diff", a, b, "--format", "json")
    return proc.returncode, json.loads(proc.stdout)


def check_json(path: str) -> dict:  # type: ignore[type-arg]
    return json.loads(run("check", path, "--format", "json").stdout)["specs"][0]


def test_the_paper_spec_and_caffes_reference_prototxt_are_one_network() -> None:
    code, doc = diff_json(KRIZHEVSKY, BVLC)
    assert code == 0 and doc["same"] and doc["aligned_by"] == "name"
    assert {p["status"] for p in doc["layers"]} == {"same"}
    # the flatten Caffe's InnerProduct implies pairs with the spec's, renamed
    assert ("flatten", "fc6_flatten") in [(p["a"]["name"], p["b"]["name"]) for p in doc["layers"]]


def test_krizhevsky_against_torchvision() -> None:
    code, doc = diff_json(KRIZHEVSKY, TORCHVISION)
    assert code == 1 and not doc["same"]
    a, b = check_json(KRIZHEVSKY), check_json(TORCHVISION)
    assert doc["totals"]["params"] == [a["totals"]["params"], b["totals"]["params"]]
    assert doc["totals"]["macs"] == [a["totals"]["macs"], b["totals"]["macs"]]
    assert doc["totals"]["input"] == [a["input"], b["input"]]
    first = doc["layers"][0]
    assert (first["a"]["name"], first["b"]["name"]) == ("conv1", "features_0")
    assert first["differences"]["attr:out_channels"] == [96, 64]
    assert first["differences"]["attr:padding"] == [[0, 0], [2, 2]]
    # LRN is only in the paper's network
    assert [p["a"]["name"] for p in doc["layers"] if p["status"] == "only_a"][:2] == [
        "norm1",
        "norm2",
    ]
    table = run("diff", KRIZHEVSKY, TORCHVISION)
    assert table.returncode == 1
    assert "34,944 → 23,296" in table.stdout
    differing = sum(1 for p in doc["layers"] if p["status"] != "same")
    assert table.stdout.rstrip().endswith(
        f"different networks ({differing} of {len(doc['layers'])} rows differ)"
    )


SPEC = """\
archspec: 1
name: {name}
input: {{shape: [3, 8, 8]}}
layers:
{layers}"""


def write(tmp_path: Path, name: str, *layers: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, layers="".join(f"  - {x}\n" for x in layers)))
    return str(path)


def test_a_separate_activation_and_a_moot_ceil_mode_are_the_same_network(tmp_path: Path) -> None:
    a = write(
        tmp_path,
        "a",
        "{name: c, type: conv2d, out_channels: 4, kernel: 3, padding: 1, activation: relu}",
        "{name: p, type: maxpool2d, kernel: 2}",
    )
    b = write(
        tmp_path,
        "b",
        "{name: conv, type: conv2d, out_channels: 4, kernel: [3, 3], padding: [1, 1]}",
        "{name: r, type: relu}",
        "{name: pool, type: maxpool2d, kernel: 2, stride: 2, ceil_mode: true}",
    )
    code, doc = diff_json(a, b)
    assert code == 0, doc
    c = write(
        tmp_path,
        "c",
        "{name: c, type: conv2d, out_channels: 4, kernel: 3, padding: 1, activation: relu}",
        "{name: p, type: maxpool2d, kernel: 3, stride: 2, ceil_mode: true}",
    )
    code, doc = diff_json(a, c)
    assert code == 1
    assert doc["layers"][1]["differences"]["attr:kernel"] == [[2, 2], [3, 3]]


def test_unusable_input_is_exit_2(tmp_path: Path) -> None:
    proc = run("diff", KRIZHEVSKY, str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
