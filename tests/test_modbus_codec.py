"""Modbus register coding, read planning and the map checks (runtime/io/modbus_codec.py)."""
import math

import pytest

from runtime.io.config import Device, Point
from runtime.io.modbus_codec import (CodecError, Field, decode, encode, engineering_range, field_of,
                                     from_engineering, has_holes, overlaps, plan_reads, raw_to_words,
                                     register_count, scale_exponent, to_engineering, type_info, words_to_raw)

# value -> registers as a Modbus device sends them, written out by hand:
# (type, value, big/big, word little, byte little)
WORDS = [
    ("INT16", -2, [0xFFFE], [0xFFFE], [0xFEFF]),
    ("UINT16", 0x1234, [0x1234], [0x1234], [0x3412]),
    ("INT32", -2, [0xFFFF, 0xFFFE], [0xFFFE, 0xFFFF], [0xFFFF, 0xFEFF]),
    ("UINT32", 0x12345678, [0x1234, 0x5678], [0x5678, 0x1234], [0x3412, 0x7856]),
    ("FLOAT32", 1.5, [0x3FC0, 0x0000], [0x0000, 0x3FC0], [0xC03F, 0x0000]),
    ("FLOAT64", -2.0, [0xC000, 0, 0, 0], [0, 0, 0, 0xC000], [0x00C0, 0, 0, 0]),
]


@pytest.mark.parametrize("typ,value,big,word_little,byte_little", WORDS)
def test_words_each_type_and_order(typ, value, big, word_little, byte_little):
    assert words_to_raw(big, typ) == value
    assert words_to_raw(word_little, typ, word_order="little") == value
    assert words_to_raw(byte_little, typ, byte_order="little") == value
    assert raw_to_words(value, typ) == big
    assert raw_to_words(value, typ, word_order="little") == word_little
    assert raw_to_words(value, typ, byte_order="little") == byte_little
    both = raw_to_words(value, typ, "little", "little")
    assert words_to_raw(both, typ, "little", "little") == value
    assert len(big) == register_count(typ)


def test_register_counts_and_ranges():
    assert [register_count(t) for t in ("BOOL", "INT16", "UINT16", "INT32", "UINT32", "FLOAT32", "FLOAT64")] == \
        [1, 1, 1, 2, 2, 2, 4]
    assert (type_info("INT16").lo, type_info("INT16").hi) == (-32768, 32767)
    assert (type_info("UINT32").lo, type_info("UINT32").hi) == (0, 4294967295)
    assert not type_info("FLOAT32").integral


def test_engineering_is_raw_times_scale_plus_offset():
    f = Field("holding", 0, "INT16", scale=0.1, offset=-40.0)
    assert to_engineering(f, 653) == pytest.approx(25.3)
    assert from_engineering(f, 25.3) == 653
    whole = Field("holding", 0, "UINT16", scale=10.0)
    assert to_engineering(whole, 12) == 120 and isinstance(to_engineering(whole, 12), int)


def test_scale_factor_exponent_divides_exactly():
    f = Field("holding", 0, "UINT16", sf_address=9)
    assert to_engineering(f, 253, -1) == 25.3           # 253 / 10, not 253 * 0.1
    assert to_engineering(f, 7, 3) == 7000
    assert from_engineering(f, 25.3, -1) == 253
    assert from_engineering(f, 7000, 3) == 7
    assert scale_exponent(-2) == -2
    assert scale_exponent(-32768) is None and scale_exponent(11) is None


def test_out_of_range_values_are_refused_not_clipped():
    f = Field("holding", 0, "INT16", scale=0.1)
    with pytest.raises(CodecError, match="outside INT16"):
        from_engineering(f, 4000.0)                       # raw 40000
    with pytest.raises(CodecError):
        from_engineering(Field("holding", 0, "UINT16"), -1)
    with pytest.raises(CodecError):
        from_engineering(Field("holding", 0, "INT32"), math.inf)
    with pytest.raises(CodecError):
        from_engineering(Field("holding", 0, "FLOAT32"), 1e39)
    with pytest.raises(CodecError):
        from_engineering(Field("holding", 0, "FLOAT64"), math.nan)
    assert from_engineering(Field("holding", 0, "INT16"), 2.5) == 2     # ties to even, like REAL_TO_INT


def test_decode_block_at_offset_and_not_implemented():
    block = [0, 0x8000, 0x3FC0, 0x0000, 0x0008]
    assert decode(Field("holding", 11, "INT16", not_implemented=-0x8000), block, 10) == (None, "not implemented")
    assert decode(Field("holding", 11, "INT16"), block, 10) == (-32768, None)
    assert decode(Field("holding", 12, "FLOAT32"), block, 10) == (1.5, None)
    assert decode(Field("holding", 14, "BOOL", bit=3), block, 10) == (True, None)
    assert decode(Field("holding", 14, "BOOL", bit=2), block, 10) == (False, None)
    assert decode(Field("coil", 5, "BOOL"), [False, True], 4) == (True, None)
    nan = raw_to_words(math.nan, "FLOAT32")
    assert decode(Field("holding", 0, "FLOAT32", not_implemented=math.nan), nan, 0) == (None, "not implemented")
    assert decode(Field("holding", 0, "FLOAT32"), nan, 0) == (None, "NaN")


def test_register_bit_keeps_the_other_bits():
    f = Field("holding", 0, "BOOL", bit=4)
    assert encode(f, True, current_word=0x8001) == [0x8011]
    assert encode(f, False, current_word=0xFFFF) == [0xFFEF]
    swapped = Field("holding", 0, "BOOL", bit=0, byte_order="little")
    assert encode(swapped, True, current_word=0x0000) == [0x0100]
    with pytest.raises(CodecError):
        encode(f, True)
    assert encode(Field("coil", 3, "BOOL"), 1) == [True]


def test_point_overrides_device_orders():
    dev = Device("d", "modbus", word_order="little", byte_order="little")
    inherit = field_of(Point("M.a", "d", "input", table="holding", address=3, type="UINT32"), dev)
    own = field_of(Point("M.b", "d", "input", table="holding", address=5, type="UINT32", word_order="big",
                         byte_order="big"), dev)
    assert (inherit.word_order, inherit.byte_order) == ("little", "little")
    assert (own.word_order, own.byte_order) == ("big", "big")
    assert field_of(Point("M.c", "d", "input", table="coil", address=1), dev).type == "BOOL"


def _f(table, address, typ="INT16"):
    return Field(table, address, typ)


def test_plan_merges_across_small_holes_only():
    spans = [_f("holding", 0), _f("holding", 1), _f("holding", 5, "INT32"), _f("holding", 20),
             _f("holding", 200, "FLOAT32"), _f("input", 0), _f("coil", 0, "BOOL"), _f("coil", 3, "BOOL"),
             _f("coil", 100, "BOOL")]
    plan = plan_reads(spans, max_gap=8)
    got = [(r.table, r.address, r.count, sorted(r.members)) for r in plan]
    assert got == [("coil", 0, 4, [6, 7]), ("coil", 100, 1, [8]), ("input", 0, 1, [5]),
                   ("holding", 0, 7, [0, 1, 2]), ("holding", 20, 1, [3]), ("holding", 200, 2, [4])]
    assert has_holes(plan[3], spans) and not has_holes(plan[5], spans)
    assert len(plan_reads(spans, max_gap=0)) == 8


def test_plan_respects_the_request_limits():
    regs = [_f("holding", a) for a in range(0, 300)]
    plan = plan_reads(regs, max_gap=8)
    assert [(r.address, r.count) for r in plan] == [(0, 125), (125, 125), (250, 50)]
    bits = [_f("coil", a, "BOOL") for a in range(0, 4100, 2)]
    assert [r.count for r in plan_reads(bits, max_gap=8)] == [1999, 1999, 99]
    assert [r.count for r in plan_reads(regs[:20], max_gap=8, limit=8)] == [8, 8, 4]
    # a 4-register value never straddles two requests
    wide = [_f("holding", a, "FLOAT64") for a in range(0, 400, 4)]
    assert all(r.count % 4 == 0 for r in plan_reads(wide, max_gap=0))


def test_plan_overlapping_inputs_share_a_request():
    spans = [_f("holding", 10, "UINT32"), _f("holding", 10, "UINT16"), Field("holding", 11, "BOOL", bit=3)]
    plan = plan_reads(spans, max_gap=0)
    assert [(r.address, r.count, sorted(r.members)) for r in plan] == [(10, 2, [0, 1, 2])]


def _pt(var, direction, table, address, typ="INT16", bit=None, device="d"):
    return Point(var, device, direction, table=table, address=address, type=typ, bit=bit)


def test_overlaps_outputs_and_output_input_only():
    pts = [
        _pt("M.a", "input", "holding", 0, "UINT32"),
        _pt("M.b", "input", "holding", 1),                 # inputs may share
        _pt("M.c", "output", "holding", 1),                # output on an input's register
        _pt("M.d", "output", "holding", 10, "FLOAT32"),
        _pt("M.e", "output", "holding", 11),               # two outputs fight
        _pt("M.f", "output", "holding", 20, "BOOL", 1),
        _pt("M.g", "output", "holding", 20, "BOOL", 2),    # other bits of one register: fine
        _pt("M.h", "output", "holding", 20, "BOOL", 1),    # same bit: fights M.f
        _pt("M.i", "output", "holding", 30, device="other"),
        _pt("M.j", "output", "coil", 30, "BOOL"),          # other table
        _pt("M.k", "output", "holding", 30, device="other2"),
    ]
    assert overlaps(pts) == [(0, 2, "holding", 1), (1, 2, "holding", 1), (3, 4, "holding", 11),
                             (5, 7, "holding", 20)]


def test_engineering_range_for_the_type_check():
    assert engineering_range(_pt("M.a", "input", "holding", 0, "INT16")) == (-32768, 32767)
    p = Point("M.b", "d", "input", table="holding", address=0, type="UINT16", scale=-0.1, offset=10.0)
    lo, hi = engineering_range(p)
    assert lo == pytest.approx(-6543.5) and hi == pytest.approx(10.0)
    assert engineering_range(Point("M.c", "d", "input", table="holding", address=0, type="UINT16",
                                   scale_factor=5)) is None
    assert engineering_range(_pt("M.d", "input", "coil", 0, None)) == (0.0, 1.0)
