"""The real Linux md driver judges arrays that fastraid rebuilt (kernel-md under qemu): an
array made by fastraid.create over random data loses members (zeroed or deleted), fastraid
rebuilds them onto new files, and the kernel must assemble the result clean (no resync or
recovery), not degraded, with the content it had before the failure and a scrub with
mismatch_cnt 0. A rebuild stopped half-way must be resumed by the kernel itself (md's
recovery_offset, §8.4) to the same content.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import fastraid
import pytest
from kernelmd import check, summary

pytestmark = pytest.mark.slow

MEMBER = 6 << 20
CHUNK = 64 * 1024


def make(tmp: Path, level: str, n: int, layout: str) -> tuple[list[Path], str]:
    rng = random.Random(f"{level}{n}{layout}")
    paths = []
    for i in range(n):
        p = tmp / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(p)
    fastraid.plan_create(paths, level=level, chunk=CHUNK, layout=layout, force=True).execute()
    with fastraid.open(paths, readonly=True) as a:
        sha = hashlib.sha256(a.read(0, a.size)).hexdigest()
    return paths, sha


def judge(images: list[Path], sha: str, *, recovery_expected: bool = False) -> None:
    r = check(images)
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    events = r["sync_events"]
    if not recovery_expected:
        assert not [e for e in events if "resync" in e or "recovery" in e], why
    assert r["degraded"] == 0, why
    assert r["sha256"] == sha, why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why


@pytest.mark.parametrize(
    "level,n,layout,lost",
    [("raid5", 4, "left-symmetric", (1,)), ("raid6", 5, "left-asymmetric", (0, 3))],
    ids=["raid5-ls-4", "raid6-la-5-two-lost"],
)
def test_kernel_assembles_rebuilt_array(
    tmp_path: Path, level: str, n: int, layout: str, lost: tuple[int, ...]
) -> None:
    paths, sha = make(tmp_path, level, n, layout)
    for i in lost:  # failed: the first zeroed, the second deleted
        if i == lost[0]:
            paths[i].write_bytes(bytes(MEMBER))
        else:
            paths[i].unlink()
    members = [p for i, p in enumerate(paths) if i not in lost]
    for i in lost:
        new = tmp_path / f"new{i}.img"
        fastraid.rebuild(members, slot=i, new=new)
        members.append(new)
    judge(members, sha)


def test_kernel_resumes_a_stopped_rebuild(tmp_path: Path) -> None:
    paths, sha = make(tmp_path, "raid5", 4, "left-symmetric")
    paths[2].unlink()
    members = [paths[0], paths[1], paths[3]]
    new = tmp_path / "new.img"

    class Stop(Exception):
        pass

    def stop(done: int, total: int, rate: float) -> None:
        if done >= total // 2:
            raise Stop

    with pytest.raises(Stop):
        fastraid.rebuild(members, new=new, progress=stop, batch_bytes=256 * 1024)
    r = check([*members, new])
    why = summary(r)
    assert r["assembled"] and r["exit_code"] == 0, why
    assert any("recovery" in e for e in r["sync_events"]), why
    assert r["sha256"] == sha, why
    assert r["scrub"]["finished"] and r["scrub"]["mismatch_cnt"] == 0, why
