"""Kernel-written md arrays (``tests/fixtures/kernel``, made by ``tools/kernel_cases/make.py``
with the real md driver under qemu): fastraid must get every byte back.

Each case directory holds xz-compressed member images, maybe mdadm's reshape backup file,
and a ``manifest.json`` saying what the array must hold (``expected``: sha256 over
``length_bytes``; for ext4 cases also the files and their sha256). Nothing here depends on
a case beyond its manifest: reshapes cut by a power loss at various points, RAID-10 far and
offset, metadata 1.0/1.1, ext4. Every case is read whole with ``fastraid.open`` and with
``fastraid export``, and again with each single member left out where the level allows
(each pair for RAID-6; for 2-copy RAID-10 every pair md would run, the others must never
give wrong bytes called clean). ext4 cases: ``e2fsck -fn`` on a copy of the export and the
files dumped with ``debugfs``. Cases with a backup file are also read without it: bytes
fastraid trusts must be right. ``detail()`` must show the superblocks' reshape. Inputs are
read-only and hashed before and after.

A range fastraid reports undecidable (``uncertain``) fails these tests unless it is shown
ambiguous: the manifests' ``layout_census`` says, from the member images alone, where parity
cannot tell the old geometry from the new one (``parity_ambiguous_sectors``) and, with one
member K left out, where it cannot without K's bytes (``parity_ambiguous_sectors_without``,
keyed by K's index in ``members``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import lzma
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastraid
import pytest
from fastraid import cli

KERNEL_CASES = Path(__file__).parent / "fixtures" / "kernel"
WINDOW = 4 << 20
BLOCK = 4096
TRUSTED = {"clean", "rebuilt"}

# Known fastraid failures: (case glob, test glob) -> reason; test is "full", "export",
# "ext4", "without-K", "pairs", "raid10-pairs" or "members-only". Each is a strict xfail:
# when fastraid is fixed, the test passes, fails as XPASS, and the entry must go.
_ALL = ("full", "export", "without-*")
XFAIL: dict[tuple[str, str], str] = {}


def case_names() -> list[str]:
    if not KERNEL_CASES.is_dir():
        return []
    return sorted(p.name for p in KERNEL_CASES.iterdir() if (p / "manifest.json").is_file())


def _manifest(name: str) -> dict[str, Any]:
    return json.loads((KERNEL_CASES / name / "manifest.json").read_text())


def _param(name: str, test: str, *values: Any) -> Any:
    reason = next(
        (r for (c, t), r in XFAIL.items() if fnmatch.fnmatch(name, c) and fnmatch.fnmatch(test, t)),
        None,
    )
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(name, *values, marks=marks, id=f"{name}-{test}")


def _tolerates(manifest: dict[str, Any]) -> int:
    return int(manifest.get("tolerates_missing") or 0)


@dataclass(frozen=True)
class KernelCase:
    name: str
    manifest: dict[str, Any]
    members: list[Path]
    backup: Path | None

    @property
    def expected(self) -> dict[str, Any]:
        return self.manifest["expected"]

    def inputs(self) -> list[Path]:
        return [*self.members, *([self.backup] if self.backup else [])]


def _sha256(path: Path, length: int | None = None) -> str:
    h = hashlib.sha256()
    left = (1 << 62) if length is None else length
    with path.open("rb") as f:
        while left > 0:
            block = f.read(min(left, 1 << 20))
            if not block:
                break
            h.update(block)
            left -= len(block)
    return h.hexdigest()


def _unpack(src: Path, dest: Path) -> None:
    """Decompress an .xz image, leaving runs of zeros as holes."""
    zero = bytes(1 << 16)
    with lzma.open(src) as fin, dest.open("wb") as fout:
        while block := fin.read(1 << 16):
            if block == zero[: len(block)]:
                fout.seek(len(block), 1)
            else:
                fout.write(block)
        fout.truncate()


@pytest.fixture(scope="session")
def kernel_case(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], KernelCase]:
    root = tmp_path_factory.mktemp("kernel-cases")
    cache: dict[str, KernelCase] = {}

    def load(name: str) -> KernelCase:
        if name not in cache:
            src = KERNEL_CASES / name
            manifest = _manifest(name)
            dest = root / name
            dest.mkdir()
            members = []
            for m in manifest["members"]:
                path = dest / m["file"].removesuffix(".xz")
                _unpack(src / m["file"], path)
                assert path.stat().st_size == m["size_bytes"]
                assert _sha256(path) == m["sha256_uncompressed"]
                members.append(path)
            backup = None
            if manifest.get("backup_file"):
                b = manifest["backup_file"]
                backup = dest / b["file"].removesuffix(".xz")
                _unpack(src / b["file"], backup)
                assert _sha256(backup) == b["sha256_uncompressed"]
            for p in [*members, *([backup] if backup else [])]:
                p.chmod(0o444)
            cache[name] = KernelCase(name, manifest, members, backup)
        return cache[name]

    return load


def _input_hashes(case: KernelCase) -> list[str]:
    return [_sha256(p) for p in case.inputs()]


def _read_all(case: KernelCase, members: list[Path]) -> tuple[bytes, list[dict[str, Any]], Any]:
    """The first expected.length_bytes read through fastraid.open (strict=False), its trust
    map and detail()."""
    length = case.expected["length_bytes"]
    with fastraid.open(members, readonly=True, backup_file=case.backup) as array:
        assert array.size >= length, f"array size {array.size} < expected {length}"
        buf = bytearray(length)
        pos = 0
        while pos < length:
            n = min(WINDOW, length - pos)
            got = array.readinto(pos, memoryview(buf)[pos : pos + n], strict=False)
            assert got == n, f"short read at {pos}: {got} of {n}"
            pos += n
        return bytes(buf), array.trust_map(), array.detail()


def _ambiguous(case: KernelCase, left_out: int | None = None) -> list[tuple[int, int]]:
    """Byte ranges where parity cannot tell the old geometry from the new one (the
    manifest's layout_census), with every member or, given ``left_out`` (an index into
    the manifest's ``members``), with that member's bytes unknown too."""
    census = case.manifest.get("layout_census") or {}
    sectors = list(census.get("parity_ambiguous_sectors", []))
    if left_out is not None:
        sectors += census.get("parity_ambiguous_sectors_without", {}).get(str(left_out), [])
    return [(a * 512, b * 512) for a, b in sectors]


def _check_read(
    case: KernelCase, members: list[Path], left_out: int | None = None
) -> list[dict[str, Any]]:
    """Every byte right, or: the ranges fastraid does not trust lie where parity really
    cannot decide (layout_census; with member ``left_out`` left out, also where it cannot
    without that member's bytes) and every byte it trusts is right."""
    before = _input_hashes(case)
    data, trust, detail = _read_all(case, members)
    assert _input_hashes(case) == before, "an input changed"
    untrusted = [
        (r["offset"], r["offset"] + r["length"]) for r in trust if r["kind"] not in TRUSTED
    ]
    if not untrusted:
        assert hashlib.sha256(data).hexdigest() == case.expected["sha256"], (
            f"content differs from the manifest over {case.expected['length_bytes']} bytes, "
            f"all of it reported clean/rebuilt; trust map {trust[:8]}"
        )
        return trust
    ambiguous = _ambiguous(case, left_out)
    for lo, hi in untrusted:
        for b in range(lo // BLOCK * BLOCK, hi, BLOCK):
            assert any(a <= b and b + BLOCK <= z for a, z in ambiguous), (
                f"fastraid reports {lo}..{hi} undecidable, but parity decides array byte {b} "
                f"(manifest layout_census); detail notes {detail.get('notes')}"
            )
    assert "pattern" in case.manifest, f"untrusted ranges {untrusted[:8]}"
    name = case.manifest["pattern"]["name"]
    for i in range(len(data) // BLOCK):
        b = i * BLOCK
        if any(lo <= b < hi for lo, hi in untrusted):
            continue
        assert data[b : b + BLOCK] == _pattern_block(name, i), (
            f"array byte {b} is wrong but reported clean/rebuilt"
        )
    return trust


# ---------------------------------------------------------------- whole, every member


@pytest.mark.parametrize("name", [_param(n, "full") for n in case_names()])
def test_read_whole(name: str, kernel_case: Callable[[str], KernelCase]) -> None:
    case = kernel_case(name)
    _check_read(case, list(reversed(case.members)))  # any order


@pytest.mark.parametrize("name", [_param(n, "export") for n in case_names()])
def test_export_cli(name: str, kernel_case: Callable[[str], KernelCase], tmp_path: Path) -> None:
    case = kernel_case(name)
    before = _input_hashes(case)
    out = tmp_path / "export.img"
    args = ["export", *map(str, case.members), "-o", str(out), "--quiet"]
    if case.backup:
        args += ["--backup-file", str(case.backup)]
    rc = cli.main(args)
    assert _input_hashes(case) == before
    if rc != 0:
        # undecidable ranges give a distinct exit code; allowed only where parity really
        # cannot decide (test_read_whole checks the ranges and the trusted bytes)
        assert _ambiguous(case), f"export exit code {rc}"
        return
    assert _sha256(out, case.expected["length_bytes"]) == case.expected["sha256"]


@pytest.mark.parametrize(
    "name",
    [
        _param(n, "detail")
        for n in case_names()
        if _manifest(n).get("state") == "reshape-interrupted"
    ],
)
def test_detail_shows_the_reshape(name: str, kernel_case: Callable[[str], KernelCase]) -> None:
    """detail() reports the reshape the kernel's superblocks recorded at the cut (members
    only: this is about the superblocks)."""
    case = kernel_case(name)
    sb = case.manifest["reshape"]["superblock_geometry"]
    (position,) = case.manifest["reshape"]["on_disk_reshape_position_sectors"]
    with fastraid.open(case.members, readonly=True) as array:
        reshape = array.detail()["reshape"]
    assert reshape["position"] == position
    assert reshape["delta_disks"] == sb["delta_disks"]
    assert reshape["new_chunk"] == sb["new_chunk_sectors"] * 512
    assert reshape["new_layout"] == sb["new_layout"]
    assert reshape["backwards"] == (sb["delta_disks"] < 0 or sb["backwards_flag"])


# ---------------------------------------------------------------- members left out


def _without_params() -> list[Any]:
    out = []
    for n in case_names():
        m = _manifest(n)
        if _tolerates(m) >= 1:
            out += [_param(n, f"without-{k}", k) for k in range(len(m["members"]))]
    return out


@pytest.mark.parametrize(("name", "left_out"), _without_params())
def test_read_without_one(
    name: str, left_out: int, kernel_case: Callable[[str], KernelCase]
) -> None:
    case = kernel_case(name)
    members = [p for k, p in enumerate(case.members) if k != left_out]
    _check_read(case, members, left_out)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [_param(n, "pairs") for n in case_names() if _tolerates(_manifest(n)) >= 2],
)
def test_read_without_each_pair(name: str, kernel_case: Callable[[str], KernelCase]) -> None:
    case = kernel_case(name)
    for pair in itertools.combinations(range(len(case.members)), 2):
        members = [p for k, p in enumerate(case.members) if k not in pair]
        try:
            _check_read(case, members)
        except AssertionError as e:
            raise AssertionError(f"members {pair} left out: {e}") from None


def _raid10_2copy(manifest: dict[str, Any]) -> bool:
    """RAID-10 with two copies (n2, f2, o2; mid-reshape: in both geometries)."""
    sb = manifest["members"][0]["superblock"] or {}
    words = [sb.get("layout", 0), (sb.get("reshape") or {}).get("new_layout", sb.get("layout"))]
    return manifest.get("level") == "raid10" and all(
        (w & 0xFF) * ((w >> 8) & 0xFF) == 2 for w in words
    )


def _md_runs_without(manifest: dict[str, Any], missing: set[int]) -> bool:
    """Would md run a RAID-10 without the members of roles ``missing``? raid10.c
    ``_enough``, in every geometry (mid-reshape: the old and the new one): windows of
    ``copies`` consecutive roles, starting at 0 and every ``near_copies`` roles on, must each
    keep a member."""
    sb = manifest["members"][0]["superblock"]
    rs = sb.get("reshape")
    geos = [(sb["raid_disks"], rs["new_layout"] if rs else sb["layout"])]
    if rs:
        geos.append((sb["raid_disks"] - rs["delta_disks"], sb["layout"]))
    for disks, word in geos:
        near, copies = word & 0xFF, (word & 0xFF) * ((word >> 8) & 0xFF)
        first = 0
        while True:
            if all((first + i) % disks in missing for i in range(copies)):
                return False
            first = (first + near) % disks
            if first == 0:
                break
    return True


@pytest.mark.parametrize(
    "name", [_param(n, "raid10-pairs") for n in case_names() if _raid10_2copy(_manifest(n))]
)
def test_raid10_without_each_pair(name: str, kernel_case: Callable[[str], KernelCase]) -> None:
    """Two members left out of a 2-copy RAID-10: every pair md would still run (in both
    geometries of a reshape) must read exactly; for the others, fastraid may refuse or
    report unreadable ranges, but never return wrong bytes it calls clean or rebuilt."""
    case = kernel_case(name)
    roles = [m["superblock"]["role"] for m in case.manifest["members"]]
    n = len(roles)
    length = case.expected["length_bytes"]
    for pair in itertools.combinations(range(n), 2):
        members = [p for k, p in enumerate(case.members) if k not in pair]
        a, b = sorted(roles[k] for k in pair)
        runs = n > 2 and _md_runs_without(case.manifest, {a, b})
        if runs:
            try:
                _check_read(case, members)
            except AssertionError as e:
                raise AssertionError(f"members {pair} (roles {a}, {b}) left out: {e}") from None
            continue
        try:
            array = fastraid.open(members, readonly=True)
        except fastraid.FastRaidError:
            continue
        with array:
            data = array.read(0, length, strict=False)
            trust = array.trust_map()
        untrusted = [
            (r["offset"], r["offset"] + r["length"]) for r in trust if r["kind"] not in TRUSTED
        ]
        assert untrusted, f"roles {a}, {b} missing (both copies of some chunks) yet all trusted"
        if (
            hashlib.sha256(data).hexdigest() != case.expected["sha256"]
            and "pattern" in case.manifest
        ):
            pat = case.manifest["pattern"]["name"]
            for i in range(length // BLOCK):
                if data[i * BLOCK : (i + 1) * BLOCK] != _pattern_block(pat, i):
                    assert any(lo <= i * BLOCK < hi for lo, hi in untrusted), (
                        f"roles {a}, {b} missing: wrong block at {i * BLOCK} reported trusted"
                    )


# ---------------------------------------------------------------- backup file left out


def _pattern_block(name: str, i: int) -> bytes:
    """Block i of ``kernel-md pattern --name name`` (the manifest's pattern generator)."""
    out = bytearray()
    for s in range(8):
        h = f"fastraid-fixture {name} block {i:012d} sector {s}\n".encode()
        out += h + bytes([(i * 7 + s) % 251]) * (512 - len(h))
    return bytes(out)


@pytest.mark.parametrize(
    "name",
    [
        _param(n, "members-only")
        for n in case_names()
        if _manifest(n).get("backup_file") and "pattern" in _manifest(n)
    ],
)
def test_members_only_never_wrong_when_trusted(
    name: str, kernel_case: Callable[[str], KernelCase]
) -> None:
    """Without mdadm's backup file fastraid may not get every byte (the critical section
    can live only in the backup), but a byte it calls clean or rebuilt must be right."""
    case = kernel_case(name)
    pattern = case.manifest["pattern"]
    length = pattern["length_bytes"]
    with fastraid.open(case.members, readonly=True) as array:
        data = array.read(0, length, strict=False)
        trust = array.trust_map()
    assert len(data) == length
    wrong = [
        i
        for i in range(length // BLOCK)
        if data[i * BLOCK : (i + 1) * BLOCK] != _pattern_block(pattern["name"], i)
    ]
    untrusted = [
        (r["offset"], r["offset"] + r["length"]) for r in trust if r["kind"] not in TRUSTED
    ]
    trusted_wrong = [
        i
        for i in wrong
        if not any(lo <= i * BLOCK and (i + 1) * BLOCK <= hi for lo, hi in untrusted)
    ]
    assert not trusted_wrong, (
        f"{len(trusted_wrong)} wrong 4 KiB blocks reported clean/rebuilt, first at array byte "
        f"{trusted_wrong[0] * BLOCK}"
    )


# ---------------------------------------------------------------- ext4 inside


@pytest.mark.parametrize(
    "name", [_param(n, "ext4") for n in case_names() if "ext4" in _manifest(n)]
)
def test_ext4_files(name: str, kernel_case: Callable[[str], KernelCase], tmp_path: Path) -> None:
    e2fsck, debugfs = shutil.which("e2fsck"), shutil.which("debugfs")
    if e2fsck is None or debugfs is None:
        pytest.skip("e2fsprogs not installed (kernel-md setup installs it)")
    case = kernel_case(name)
    out = tmp_path / "export.img"
    args = ["export", *map(str, case.members), "-o", str(out), "--quiet"]
    if case.backup:
        args += ["--backup-file", str(case.backup)]
    assert cli.main(args) == 0
    copy = tmp_path / "fs.img"
    shutil.copyfile(out, copy)
    r = subprocess.run([e2fsck, "-fn", str(copy)], capture_output=True, text=True)
    assert r.returncode == 0, f"e2fsck -fn: rc {r.returncode}\n{r.stdout}\n{r.stderr}"
    for f in case.manifest["ext4"]["files"]:
        dumped = tmp_path / "dumped"
        dumped.unlink(missing_ok=True)
        r = subprocess.run(
            [debugfs, "-R", f"dump {f['path']} {dumped}", str(copy)],
            capture_output=True,
            text=True,
        )
        assert dumped.is_file(), f"debugfs could not dump {f['path']}: {r.stderr}"
        assert dumped.stat().st_size == f["size_bytes"], f["path"]
        assert _sha256(dumped) == f["sha256"], f["path"]
