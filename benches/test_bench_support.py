"""Plain tests of the benchmark support code: the ISA-L wrapper, the demo and the table tool."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from fastraid import _isal

ROOT = Path(__file__).resolve().parent.parent
needs_isal = pytest.mark.skipif(not _isal.available(), reason="ISA-L (pyeclib wheel) not installed")


def _mul2(x: np.ndarray) -> np.ndarray:
    y = x.astype(np.uint16) << 1
    return (y ^ np.where(y & 0x100, 0x11D, 0)).astype(np.uint8)


def _filled(rng: np.random.Generator, n: int) -> memoryview:
    buf = _isal.aligned(n)
    np.frombuffer(buf, np.uint8)[:] = rng.integers(0, 256, n, dtype=np.uint8)
    return buf


# ==================================================================================================
# _isal
# ==================================================================================================


@pytest.mark.parametrize("n", [0, 1, 63, 64, 4096, 100_000])
def test_aligned_is_aligned_writable_and_zeroed(n: int) -> None:
    buf = _isal.aligned(n)
    assert len(buf) == n and not buf.readonly and buf.format == "B"
    assert bytes(buf) == bytes(n)
    if n:
        assert _isal.address(buf) % _isal.ALIGNMENT == 0


def test_aligned_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        _isal.aligned(-1)
    with pytest.raises(ValueError):
        _isal.aligned(64, alignment=48)


@needs_isal
@pytest.mark.parametrize("k", [2, 3, 8, 20])
@pytest.mark.parametrize("n", [0, 32, 96, 4096, 4160])
def test_isal_matches_numpy(k: int, n: int) -> None:
    rng = np.random.default_rng(k * 7919 + n)
    blocks = [_filled(rng, n) for _ in range(k)]
    arrays = [np.frombuffer(b, np.uint8) for b in blocks]
    want_p = np.zeros(n, np.uint8)
    want_q = np.zeros(n, np.uint8)
    for a in reversed(arrays):
        want_p ^= a
        want_q = _mul2(want_q) ^ a
    out, p, q = _isal.aligned(n), _isal.aligned(n), _isal.aligned(n)
    assert _isal.xor_gen(blocks, out) is out
    assert bytes(out) == want_p.tobytes()
    assert _isal.pq_gen(blocks, p, q) == (p, q)
    assert bytes(p) == want_p.tobytes() and bytes(q) == want_q.tobytes()


@needs_isal
def test_isal_xor_any_length() -> None:
    rng = np.random.default_rng(1)
    blocks = [_filled(rng, 100) for _ in range(3)]
    out = _isal.aligned(100)
    _isal.xor_gen(blocks, out)
    want = np.bitwise_xor.reduce([np.frombuffer(b, np.uint8) for b in blocks])
    assert bytes(out) == want.tobytes()


@needs_isal
def test_isal_refuses_what_isal_cannot_do() -> None:
    a, b, out = _isal.aligned(64), _isal.aligned(64), _isal.aligned(64)
    with pytest.raises(ValueError, match="at least 2"):
        _isal.xor_gen([a], out)
    with pytest.raises(ValueError, match="at least 2"):
        _isal.pq_gen([a], out, _isal.aligned(64))
    with pytest.raises(ValueError, match="bytes, expected"):
        _isal.xor_gen([a, _isal.aligned(128)], out)
    with pytest.raises(ValueError, match="multiple of 32"):
        _isal.pq_gen([_isal.aligned(40)] * 2, _isal.aligned(40), _isal.aligned(40))
    backing = _isal.aligned(128)
    with pytest.raises(ValueError, match="aligned"):
        _isal.xor_gen([a, b], backing[1:65])
    with pytest.raises(TypeError, match="writable"):
        _isal.xor_gen([a, b], bytes(64))
    with pytest.raises(TypeError):
        _isal.xor_gen([a, np.zeros(128, np.uint8)[::2]], out)


@needs_isal
def test_prepared_call_and_close() -> None:
    rng = np.random.default_rng(2)
    blocks = [_filled(rng, 256) for _ in range(4)]
    p, q = _isal.aligned(256), _isal.aligned(256)
    with _isal.prepare_pq_gen(blocks, p, q) as call:
        assert call.raw() == 0
        call()
    with pytest.raises(ValueError, match="after close"):
        call()


@needs_isal
def test_dispatched_names_an_exported_variant() -> None:
    for op in ("xor_gen", "pq_gen"):
        name = _isal.dispatched(op)
        assert name is None or name.startswith(op + "_")
    assert _isal.dispatched("nonsense") is None
    assert _isal.version() is None or _isal.version().count(".") >= 1


# ==================================================================================================
# The demo
# ==================================================================================================


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    demo = pytest.importorskip("fastraid.demo")
    code = demo.main(["--k", "4", "--size", "64KiB", "--time", "0.001", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verified"] is True
    assert set(report["results"]) == {"xor_gen", "pq_gen", "recover"}
    if _isal.available():
        assert report["isal"]["matches"] is True
        assert report["results"]["recover"]["isal_op"] == "pq_gen"


def test_demo_text_and_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    demo = pytest.importorskip("fastraid.demo")
    assert demo.main(["--k", "3", "--size", "100", "--time", "0.001", "--lose", "1,2"]) == 0
    text = capsys.readouterr().out
    assert "bytes equal" in text and "xor_gen" in text
    assert demo.main(["--k", "1"]) == 2
    assert demo.main(["--size", "12parsecs"]) == 2
    assert demo.main(["--lose", "3,3"]) == 2
    assert demo.parse_size("1MiB") == 1 << 20 and demo.parse_size("4k") == 4096


# ==================================================================================================
# tools/bench_table.py
# ==================================================================================================


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "tools" / "bench_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_table"] = module
    spec.loader.exec_module(module)
    return module


def _bench(op: str, k: int, size: int, lib: str, median: float, correct: bool = True) -> Any:
    info = {"lib": lib, "op": op, "k": k, "size": size, "bytes_read": k * size}
    info["correct"] = correct
    return {"group": f"{op} k={k}", "extra_info": info, "stats": {"median": median}}


def test_bench_table_renders_targets(tmp_path: Path) -> None:
    tool = _load_tool()
    benches = []
    for k in (2, 4, 8):
        benches += [
            _bench("xor_gen", k, 4096, "fastraid", 1.0),
            _bench("xor_gen", k, 4096, "isal", 2.0),  # 2x: PASS (>= 1.3x)
            _bench("xor_gen", k, 4096, "reference", 50.0),  # 50x: MISS (>= 100x)
            _bench("pq_gen", k, 4096, "fastraid", 1.0, correct=(k != 4)),
            _bench("pq_gen", k, 4096, "isal", 1.0),
        ]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": benches, "machine_info": {}}))
    groups, raw = tool.load(path)
    text = tool.render(groups, raw, "python tools/bench_table.py", quick=True)
    rows = {
        line.split("|")[1].strip() + line.split("|")[2].strip(): line
        for line in text.splitlines()
        if line.startswith("| ") and "x" in line
    }
    assert "PASS" in rows["XOR >= 1.3x ISA-L xor_gen4 KiB"]
    assert "MISS" in rows["xor_gen >= 100x reference4 KiB"]
    assert "WRONG" in rows["P+Q >= 1.0x ISA-L pq_gen4 KiB"]
    assert "2.00x / 2.00x / 2.00x" in rows["XOR >= 1.3x ISA-L xor_gen4 KiB"]
