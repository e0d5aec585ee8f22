"""Shared fixtures: the md member images of tests/fixtures/md, decompressed once per session."""

from __future__ import annotations

import json
import lzma
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
MD_FIXTURES = FIXTURES / "md"


@dataclass(frozen=True)
class MdImages:
    """One md fixture: its manifest and the paths of its decompressed member images, in
    member (``role_from_examine``) order."""

    name: str
    manifest: dict[str, Any]
    members: list[Path]


def md_fixture_names() -> list[str]:
    return sorted(p.name for p in MD_FIXTURES.iterdir() if (p / "manifest.json").is_file())


@pytest.fixture(scope="session")
def md_images(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], MdImages]:
    """``md_images(name)`` -> :class:`MdImages`; members are decompressed on first use into a
    session temporary directory and reused afterwards."""
    root = tmp_path_factory.mktemp("md-members")
    cache: dict[str, MdImages] = {}

    def load(name: str) -> MdImages:
        if name not in cache:
            src = MD_FIXTURES / name
            manifest = json.loads((src / "manifest.json").read_text())
            dest = root / name
            dest.mkdir()
            members = sorted(manifest["members"], key=lambda m: m["role_from_examine"])
            paths = []
            for member in members:
                path = dest / member["file"].removesuffix(".xz")
                with lzma.open(src / member["file"]) as fin, path.open("wb") as fout:
                    shutil.copyfileobj(fin, fout, length=1 << 20)
                assert path.stat().st_size == member["size_bytes"]
                paths.append(path)
            cache[name] = MdImages(name, manifest, paths)
        return cache[name]

    return load


@pytest.fixture
def md_copy(md_images: Callable[[str], MdImages], tmp_path: Path) -> Callable[[str], list[Path]]:
    """``md_copy(name)`` -> paths of a private copy of a fixture's members (to write to)."""

    def copy(name: str) -> list[Path]:
        dest = tmp_path / name
        dest.mkdir()
        out = []
        for p in md_images(name).members:
            out.append(dest / p.name)
            shutil.copyfile(p, out[-1])
        return out

    return copy


KERNEL_CASES = FIXTURES / "kernel"


def kernel_case(tmp: Path, name: str) -> tuple[list[Path], Path | None, dict[str, Any]]:
    """A kernel-written case of ``tests/fixtures/kernel`` (``tools/kernel_cases/make.py``)
    decompressed into ``tmp``: the member images in order, mdadm's backup file when the case
    has one, and the manifest."""
    src = KERNEL_CASES / name
    manifest: dict[str, Any] = json.loads((src / "manifest.json").read_text())
    out = []
    for f in sorted(src.glob("member-*.img.xz")):
        p = tmp / f.name.removesuffix(".xz")
        with lzma.open(f) as fin, p.open("wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        out.append(p)
    backup = None
    if (src / "md-reshape.backup.xz").exists():
        backup = tmp / "md-reshape.backup"
        with lzma.open(src / "md-reshape.backup.xz") as fin, backup.open("wb") as fout:
            shutil.copyfileobj(fin, fout)
    return out, backup, manifest
