"""fastraid.reference against itself, hand-computed vectors and (when available) ISA-L."""

from __future__ import annotations

import itertools
import random

import pytest
from fastraid import reference as ref

# ==================================================================================================
# GF(2^8) facts
# ==================================================================================================


def test_exp_table_starts_with_powers_of_two_then_reduces() -> None:
    # 2^0..2^7 are the plain powers; 2^8 = x^8 = x^4 + x^3 + x^2 + 1 = 0x1d; 2^9 = 0x3a.
    assert ref.GF_EXP[:10] == (1, 2, 4, 8, 16, 32, 64, 128, 0x1D, 0x3A)


def test_exp_table_is_a_permutation_of_the_nonzero_elements() -> None:
    assert sorted(ref.GF_EXP) == list(range(1, 256))
    for i, a in enumerate(ref.GF_EXP):
        assert ref.GF_LOG[a] == i


def _mul_slow(a: int, b: int) -> int:
    """Shift-and-add multiplication, independent of the tables."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        b >>= 1
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
    return product


def test_gf_mul_matches_shift_and_add_for_every_pair() -> None:
    for a in range(256):
        for b in range(256):
            assert ref.gf_mul(a, b) == _mul_slow(a, b)


@pytest.mark.parametrize(
    ("a", "b", "product"),
    [
        (0, 0x57, 0),
        (1, 0x57, 0x57),
        (2, 0x80, 0x1D),  # the carry out of bit 7 is reduced by 0x11d
        (2, 0x8E, 0x01),  # so 0x8e is the inverse of 2
        (4, 0x40, 0x1D),
        (0x80, 0x80, 0x13),  # x^14 = x^6 * x^8 = x^6 (x^4+x^3+x^2+1) = x^10+x^9+x^8+x^6 -> 0x13
        (3, 3, 5),  # (x+1)^2 = x^2 + 1
    ],
)
def test_gf_mul_hand_computed(a: int, b: int, product: int) -> None:
    assert ref.gf_mul(a, b) == product
    assert ref.gf_mul(b, a) == product


def test_gf_inverse_division_and_powers() -> None:
    assert ref.gf_inv(1) == 1
    assert ref.gf_inv(2) == 0x8E
    for a in range(1, 256):
        assert ref.gf_mul(a, ref.gf_inv(a)) == 1
        assert ref.gf_div(a, a) == 1
        assert ref.gf_pow(a, 255) == 1
        assert ref.gf_mul(ref.gf_pow(a, -3), ref.gf_pow(a, 3)) == 1
    assert ref.gf_pow(2, 8) == 0x1D
    assert ref.gf_pow(0, 0) == 1
    assert ref.gf_pow(0, 5) == 0
    with pytest.raises(ZeroDivisionError):
        ref.gf_inv(0)
    with pytest.raises(ZeroDivisionError):
        ref.gf_div(1, 0)


def test_gf_mul_block_uses_the_table() -> None:
    block = bytes(range(256))
    assert ref.gf_mul_block(2, block) == bytes(_mul_slow(2, b) for b in range(256))
    assert ref.gf_mul_block(1, block) == block
    assert ref.gf_mul_block(0, block) == bytes(256)


# ==================================================================================================
# P and Q vectors
# ==================================================================================================


@pytest.mark.parametrize(
    ("data", "p", "q"),
    [
        # Q = D0 + 2 D1 + 4 D2 + 8 D3 ...
        ([b"\x01", b"\x01"], b"\x00", b"\x03"),
        ([b"\x00", b"\x00", b"\x01"], b"\x01", b"\x04"),
        ([b"\x01", b"\x01", b"\x01", b"\x01"], b"\x00", b"\x0f"),
        ([b"\x00", b"\x80"], b"\x80", b"\x1d"),  # 2 * 0x80 reduces
        ([b"\x00", b"\x00", b"\x80"], b"\x80", b"\x3a"),  # 4 * 0x80 = 2 * 0x1d
        ([b"\xff", b"\xff"], b"\x00", bytes([0xFF ^ _mul_slow(2, 0xFF)])),
        ([b"ab", b"cd"], bytes([0x61 ^ 0x63, 0x62 ^ 0x64]), bytes([0x61 ^ 0xC6, 0x62 ^ 0xC8])),
        ([b"", b"", b""], b"", b""),
    ],
)
def test_pq_gen_hand_computed(data: list[bytes], p: bytes, q: bytes) -> None:
    got_p, got_q = ref.pq_gen(data)
    assert (bytes(got_p), bytes(got_q)) == (p, q)
    assert bytes(ref.xor_gen(data)) == p
    assert ref.pq_check(data, p, q) == (True, True)
    assert ref.xor_check(data, p)


def _q_naive(data: list[bytes]) -> bytes:
    """Q straight from the definition, byte by byte: sum over j of 2^j * D_j[i]."""
    out = bytearray(len(data[0]))
    for j, block in enumerate(data):
        coefficient = ref.gf_pow(2, j)
        for i, b in enumerate(block):
            out[i] ^= _mul_slow(coefficient, b)
    return bytes(out)


@pytest.mark.parametrize("k", [2, 3, 5, 17, 32, 40])
def test_q_horner_equals_the_definition(k: int) -> None:
    rng = random.Random(k)
    data = [rng.randbytes(37) for _ in range(k)]
    _, q = ref.pq_gen(data)
    assert bytes(q) == _q_naive(data)
    assert ref.q_syndrome(data, 37) == _q_naive(data)


def test_slot_order_matters() -> None:
    # Q weighs blocks by position, so swapping two different blocks changes Q but not P.
    a, b = b"\x01\x02", b"\x07\x09"
    p1, q1 = ref.pq_gen([a, b])
    p2, q2 = ref.pq_gen([b, a])
    assert p1 == p2
    assert q1 != q2


def test_checks_detect_a_flipped_bit() -> None:
    rng = random.Random(1)
    data = [rng.randbytes(64) for _ in range(4)]
    p, q = ref.pq_gen(data)
    bad = bytearray(p)
    bad[10] ^= 4
    assert not ref.xor_check(data, bad)
    assert ref.pq_check(data, bad, q) == (False, True)
    bad_q = bytearray(q)
    bad_q[63] ^= 0x80
    assert ref.pq_check(data, p, bad_q) == (True, False)


def test_outputs_are_written_in_place_and_returned() -> None:
    data = [b"\x01\x02", b"\x04\x08"]
    out = bytearray(2)
    assert ref.xor_gen(data, out) is out
    assert out == b"\x05\x0a"
    p, q = bytearray(2), bytearray(2)
    got = ref.pq_gen(data, p, q)
    assert got[0] is p and got[1] is q
    assert (p, q) == (bytearray(b"\x05\x0a"), bytearray(ref.q_syndrome(data, 2)))


# ==================================================================================================
# Recovery: every combination of up to two losses
# ==================================================================================================


@pytest.mark.parametrize("k", [2, 3, 4, 7, 12])
def test_recover_every_loss_combination(k: int) -> None:
    rng = random.Random(100 + k)
    length = 41
    data = [rng.randbytes(length) for _ in range(k)]
    p, q = ref.pq_gen(data)
    members = list(range(k)) + ["p", "q"]
    for n_lost in (0, 1, 2):
        for lost in itertools.combinations(members, n_lost):
            damaged = [None if i in lost else d for i, d in enumerate(data)]
            got = ref.recover(
                damaged,
                None if "p" in lost else p,
                None if "q" in lost else q,
            )
            assert [bytes(g) for g in got] == [data[i] for i in lost if isinstance(i, int)]
            out = [bytearray(length) for i in lost if isinstance(i, int)]
            got_out = ref.recover(
                damaged, None if "p" in lost else p, None if "q" in lost else q, out
            )
            assert all(a is b for a, b in zip(got_out, out, strict=True))
            assert [bytes(g) for g in out] == [data[i] for i in lost if isinstance(i, int)]


def test_two_data_formula_by_hand() -> None:
    # k = 3, lose slots 0 and 2: D0 + D2 = dp and D0 + 4 D2 = dq, so D2 = (dp + dq) / 5.
    d = [b"\x11", b"\x22", b"\x33"]
    p, q = ref.pq_gen(d)
    dp = p[0] ^ 0x22
    dq = q[0] ^ ref.gf_mul(2, 0x22)
    d2 = ref.gf_div(dp ^ dq, 5)
    assert d2 == 0x33
    assert ref.recover([None, d[1], None], p, q) == [bytearray(b"\x11"), bytearray(b"\x33")]


def test_recover_data_and_p_via_q_by_hand() -> None:
    # Q = D0 + 2 D1 + 4 D2; losing D2 and P: D2 = (Q + D0 + 2 D1) / 4.
    d = [b"\x05", b"\x80", b"\xc3"]
    _, q = ref.pq_gen(d)
    expected = ref.gf_div(q[0] ^ 0x05 ^ 0x1D, 4)
    assert expected == 0xC3
    assert ref.recover([d[0], d[1], None], None, q) == [bytearray(b"\xc3")]


# ==================================================================================================
# ISA-L, when pyeclib ships it: the same convention, bit for bit
# ==================================================================================================


def test_matches_isal_pq_gen() -> None:
    from fastraid import _isal

    if not _isal.available():
        pytest.skip("ISA-L (pyeclib) not installed")
    rng = random.Random(7)
    for k in (2, 3, 8, 31):
        for length in (32, 64, 4096):
            data = [_isal.aligned(length) for _ in range(k)]
            for d in data:
                d[:] = rng.randbytes(length)
            p, q = _isal.aligned(length), _isal.aligned(length)
            _isal.pq_gen(data, p, q)
            ref_p, ref_q = ref.pq_gen(data)
            assert bytes(p) == bytes(ref_p)
            assert bytes(q) == bytes(ref_q)
            x = _isal.aligned(length)
            _isal.xor_gen(data, x)
            assert bytes(x) == bytes(ref.xor_gen(data))
