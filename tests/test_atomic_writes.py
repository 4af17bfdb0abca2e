"""Output files are written atomically: a failed write leaves no file and no temporary file,
the previous file survives it, and concurrent writers never leave a corrupt file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archspec.output_files import OutputError, write_atomic, write_with

ROOT = Path(__file__).resolve().parents[1]


class Boom(Exception):
    pass


def leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_write_atomic_writes_text_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    write_atomic(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    write_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert leftovers(tmp_path, {"out.txt"}) == []


def test_file_mode_follows_the_umask(tmp_path: Path) -> None:
    mask = os.umask(0o027)
    try:
        write_atomic(tmp_path / "m.txt", "x")
    finally:
        os.umask(mask)
    assert (tmp_path / "m.txt").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt, OSError])
def test_a_failing_writer_leaves_no_file_and_no_temporary(
    tmp_path: Path, error: type[BaseException]
) -> None:
    path = tmp_path / "model.onnx"

    def writer(tmp: Path) -> None:
        tmp.write_bytes(b"half a model")
        raise error("disk on fire")

    with pytest.raises(OutputError if error is OSError else error):
        write_with(path, writer)
    assert not path.exists()
    assert leftovers(tmp_path, set()) == []


def test_a_failing_writer_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(b"the previous weights")

    def writer(tmp: Path) -> None:
        tmp.write_bytes(b"\x00" * 100_000)
        raise Boom

    with pytest.raises(Boom):
        write_with(path, writer)
    assert path.read_bytes() == b"the previous weights"
    assert leftovers(tmp_path, {"weights.pt"}) == []


def test_a_missing_directory_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        write_atomic(tmp_path / "nope" / "out.txt", "x")


def test_a_directory_in_the_way_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputError, match="cannot write"):
        write_atomic(tmp_path / "out", "x")
    assert leftovers(tmp_path, {"out"}) == []


# ---------------------------------------------------------------------------
# Two processes writing one path at once.

PAYLOAD_BYTES = 4 << 20
WRITES = 15

WRITER = """
import sys
from archspec.output_files import write_atomic
path, tag, writes = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
payload = (tag * ({size} // len(tag) + 1))[:{size}]
for _ in range(writes):
    write_atomic(path, payload)
"""


def payload(tag: str) -> bytes:
    t = tag.encode()
    return (t * (PAYLOAD_BYTES // len(t) + 1))[:PAYLOAD_BYTES]


def test_concurrent_writers_never_leave_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.bin"
    wanted = {hashlib.sha256(payload(t)).hexdigest(): t for t in ("A-writer|", "B-writer/")}
    script = WRITER.format(size=PAYLOAD_BYTES)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), tag, str(WRITES)], cwd=ROOT)
        for tag in ("A-writer|", "B-writer/")
    ]
    seen: set[str] = set()
    reads = 0
    while any(p.poll() is None for p in procs):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        digest = hashlib.sha256(data).hexdigest()
        assert digest in wanted, f"read a mixed or partial file ({len(data):,} bytes)"
        seen.add(wanted[digest])
        reads += 1
        time.sleep(0.005)
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() in wanted
    assert leftovers(tmp_path, {"shared.bin"}) == []
    assert reads > 0


def test_concurrent_exports_to_one_path_leave_a_valid_model(tmp_path: Path) -> None:
    import onnx

    path = tmp_path / "model.onnx"
    exe = str(Path(sys.executable).parent / "archspec")
    spec = str(ROOT / "specs" / "lenet5-d2l.yaml")
    procs = [
        subprocess.Popen(
            [exe, "export", spec, "-o", str(path), "--seed", str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    weights = {m.key: m.value for m in model.metadata_props}
    assert any(v in ("numpy-seed:1", "numpy-seed:2") for v in weights.values()), weights
    assert leftovers(tmp_path, {"model.onnx"}) == []
