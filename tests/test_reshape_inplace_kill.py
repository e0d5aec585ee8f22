"""An in-place reshape (no room to move the data: fastraid journals the rows it overwrites
beside the first member) SIGKILLed at random moments: after every kill, a read-only open
reads exactly the original content with nothing uncertain (the journal says the checkpoint
is exact and holds the rows in flight), and resuming finishes with the same content and
consistent parity.
"""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastraid

MEMBER = 32 << 20
KILLS = 8

CHILD = """
import sys, fastraid
members = sys.argv[1:]
print("go", flush=True)
fastraid.reshape(members, chunk=32 * 1024, batch_bytes=256 * 1024, checkpoint_bytes=0,
                 speed_limit=24 << 20)
"""


def test_inplace_chunk_change_survives_sigkill(tmp_path: Path) -> None:
    rng = random.Random(11)
    paths = []
    for i in range(4):
        p = tmp_path / f"m{i}.img"
        p.write_bytes(rng.randbytes(MEMBER))
        paths.append(str(p))
    fastraid.plan_create(paths, level="raid5", chunk=64 * 1024, force=True).execute()
    with fastraid.open(paths, readonly=True) as a:
        size = a.size
        want = hashlib.sha256(a.read(0, size)).hexdigest()
    plan = fastraid.plan_reshape(paths, chunk=32 * 1024)
    assert plan.describe()["new_offset_sectors"] == 0, "members full: in place"
    journaled = 0
    for k in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, *paths], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        journaled += bool(list(tmp_path.glob("*.journal")))
        with fastraid.open(paths, readonly=True) as a:
            assert a.size == size
            got = a.read(0, size)
            kinds = {r["kind"] for r in a.trust_map()}
        assert kinds == {"clean"}, f"kill {k}: {kinds}"
        assert hashlib.sha256(got).hexdigest() == want, f"kill {k}: content differs"
    assert journaled >= KILLS // 2, "the kills should land inside the reshape"
    fastraid.grow_continue(paths)
    assert not list(tmp_path.glob("*.journal"))
    with fastraid.open(paths, readonly=True) as a:
        assert a.chunk == 32 * 1024 and a.state == "clean"
        assert hashlib.sha256(a.read(0, size)).hexdigest() == want
    assert fastraid.check(paths, checkpoint=False).mismatch_cnt == 0
