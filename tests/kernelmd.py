"""The real Linux md driver as a test oracle: a thin wrapper of ``kernel-md check``
(``../shared/tools/kernel-md/README.md``).

The tool lives beside the repository, in ``../shared/tools/kernel-md/``. On a plain clone
without it the tests that need it are skipped, with the reason printed; in CI (``CI=true``)
they fail instead, because CI must run them.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

KERNEL_MD = Path(__file__).resolve().parents[1].parent / "shared/tools/kernel-md/kernel-md"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"kernel-md is required in CI: {reason}")
    print(f"skipping: {reason}")
    pytest.skip(reason)


def kernel_md() -> Path:
    """Path of the ``kernel-md`` script; skips (fails in CI) when it cannot run here."""
    if not KERNEL_MD.is_file():
        _unavailable(
            f"{KERNEL_MD} not found (the shared tools are not checked out beside the repo)"
        )
    if shutil.which("qemu-system-x86_64") is None:
        _unavailable("qemu-system-x86_64 not installed (run `kernel-md setup` as root)")
    if not any(os.access(p, os.R_OK) for p in glob.glob("/boot/vmlinuz-*")):
        _unavailable("no readable /boot/vmlinuz-* (run `kernel-md setup` as root)")
    return KERNEL_MD


def check(
    images: Sequence[os.PathLike[str] | str],
    *,
    scrub: bool = True,
    sha_bytes: int | None = None,
    timeout: int = 300,
) -> dict[str, Any]:
    """Run ``kernel-md check --json`` on ``images`` and return its JSON report (keys
    ``assembled``, ``level``, ``layout``, ``chunk_bytes``, ``raid_disks``, ``degraded``,
    ``sync_events``, ``sha256``, ``scrub.mismatch_cnt``, ...). The images are never
    modified (qemu snapshot disks). ``exit_code`` is kept in the report."""
    cmd = [str(kernel_md()), "check", "--json", "-q", "--timeout", str(timeout)]
    if scrub:
        cmd.append("--scrub")
    if sha_bytes is not None:
        cmd += ["--sha-bytes", str(sha_bytes)]
    cmd += [os.fspath(i) for i in images]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60)
    try:
        report: dict[str, Any] = json.loads(r.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"kernel-md check gave no JSON (exit {r.returncode}):\n{r.stdout[-2000:]}\n"
            f"{r.stderr[-4000:]}"
        ) from None
    report.setdefault("exit_code", r.returncode)
    return report


def summary(report: dict[str, Any]) -> str:
    """The fields worth printing when an assertion about a report fails."""
    keys = (
        "assembled",
        "level",
        "layout",
        "layout_name",
        "chunk_bytes",
        "raid_disks",
        "degraded",
        "array_state",
        "sync_events",
        "scrub",
        "errors",
        "exit_code",
    )
    out = {k: report.get(k) for k in keys}
    out["assemble"] = report.get("assemble")
    out["dmesg_md"] = report.get("dmesg_md")
    return json.dumps(out, indent=1, default=str)[:6000]
