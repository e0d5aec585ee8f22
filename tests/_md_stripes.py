"""A test-side restatement of md's RAID4/5/6 stripe map (docs/md-format.md section 5.3).

Deliberately independent of fastraid's own layout code, so the fixture tests can check one
against real md images without trusting the other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StripeRoles:
    """Who holds what in one stripe: member indices (roles) of P, Q and the data chunks."""

    p: int
    q: int | None
    #: ``data[d]``: the member holding logical data index ``d`` (array order).
    data: tuple[int, ...]
    #: ``slots[j]``: the member whose chunk is syndrome slot ``j`` (the ``g^j`` coefficient in
    #: Q). Found by walking members from ``(Q + 1) % n``, skipping P and Q. RAID6 only.
    slots: tuple[int, ...] = ()


def stripe_roles(level: str, layout: int, n: int, stripe: int) -> StripeRoles:
    """The roles of stripe ``stripe`` of an ``n``-member array (md's non-DDF layouts)."""
    i = stripe % n
    if level == "raid4":
        n_data = n - 1
        return StripeRoles(p=n_data, q=None, data=tuple(range(n_data)))
    if level == "raid5":
        n_data = n - 1
        p = {0: n_data - i, 1: i, 2: n_data - i, 3: i, 4: 0, 5: n_data}[layout]
        if layout in (0, 1, 5):  # asymmetric / parity-last: skip over P
            data = tuple(d if d < p else d + 1 for d in range(n_data))
        elif layout in (2, 3):  # symmetric: start right after P and wrap
            data = tuple((p + 1 + d) % n for d in range(n_data))
        else:  # 4: parity-first
            data = tuple(d + 1 for d in range(n_data))
        return StripeRoles(p=p, q=None, data=data)
    if level == "raid6":
        n_data = n - 2
        if layout == 2:  # left-symmetric
            p = n - 1 - i
            q = (p + 1) % n
            data = tuple((p + 2 + d) % n for d in range(n_data))
        elif layout == 3:  # right-symmetric
            p = i
            q = (p + 1) % n
            data = tuple((p + 2 + d) % n for d in range(n_data))
        else:
            raise NotImplementedError(f"raid6 layout {layout} is not needed by these tests")
        walk = [(q + 1 + s) % n for s in range(n)]
        slots = tuple(m for m in walk if m not in (p, q))
        return StripeRoles(p=p, q=q, data=data, slots=slots)
    raise NotImplementedError(level)


def pattern_block(scenario: str, i: int) -> bytes:
    """Block ``i`` (4096 bytes) of the fixtures' logical content (manifest ``pattern``)."""
    out = b""
    for s in range(8):
        header = f"fastraid-fixture {scenario} block {i:012d} sector {s}\n".encode()
        out += header + bytes([(i * 7 + s) % 251]) * (512 - len(header))
    return out
