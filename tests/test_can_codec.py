"""CanCodec: DBC decoding into point updates, encoding with refusal, loader helpers."""
from __future__ import annotations

import os

import cantools
import pytest

from runtime.io.can_codec import CanCodec, CanConfigError, EncodeRefused, missing, signal_range
from runtime.io.config import CanTransmit, Point
from runtime.io.quality import BAD, GOOD

BMS_DBC = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "io", "bms_can.dbc"))
CTRL_DBC = os.path.join(os.path.dirname(__file__), "fixtures", "can", "ctrl.dbc")


def inp(var, message, signal):
    return Point(var, "bms", "input", message=message, signal=signal)


def out(var, message, signal, **kw):
    return Point(var, "pcs", "output", message=message, signal=signal, **kw)


@pytest.fixture
def db():
    return cantools.database.load_file(BMS_DBC, strict=False)


def frame_356(db, v=52.1, i=-12.3, t=25.5):
    return db.get_message_by_name("BMS_Measurements_356").encode(
        {"BatteryVoltage": v, "BatteryCurrent": i, "BatteryTemperature": t})


def test_decode_binds_signals_by_message_name_or_id_text(db):
    c = CanCodec(BMS_DBC, [inp("Main.vBat", "BMS_Measurements_356", "BatteryVoltage"),
                           inp("Main.iBat", "0x356", "BatteryCurrent"),
                           inp("Main.soc", "853", "SOC")])
    ups = c.decode(0x356, frame_356(db), 1234)
    assert [(u.path, u.value, u.quality, u.ts_ns) for u in ups] == [
        ("Main.vBat", 52.1, GOOD, 1234), ("Main.iBat", -12.3, GOOD, 1234)]
    soc = db.get_message_by_name("BMS_SocSoh_355").encode({"SOC": 87, "SOH": 99})
    assert [(u.path, u.value) for u in c.decode(0x355, soc, 5)] == [("Main.soc", 87)]
    assert c.rx_by_message["BMS_Measurements_356"] == 1 and c.last_rx_ns["BMS_SocSoh_355"] == 5


def test_short_frame_makes_every_point_of_that_frame_bad(db):
    c = CanCodec(BMS_DBC, [inp("Main.vBat", "0x356", "BatteryVoltage"), inp("Main.tBat", "0x356", "BatteryTemperature"),
                           inp("Main.soc", "0x355", "SOC")])
    ups = c.decode(0x356, frame_356(db)[:5], 77)
    assert [(u.path, u.value, u.quality, u.ts_ns) for u in ups] == [("Main.vBat", None, BAD, 77),
                                                                      ("Main.tBat", None, BAD, 77)]
    assert c.decode_failures == 1 and "5 bytes" in c.last_decode_error
    # the next good frame decodes again
    assert all(u.quality == GOOD for u in c.decode(0x356, frame_356(db), 78))
    assert c.decode_failures == 1


def test_longer_frame_decodes_the_bytes_the_dbc_defines(db):
    # the SMA variant of 0x355 sends 6 bytes where this profile has 4
    c = CanCodec(BMS_DBC, [inp("Main.soc", "BMS_SocSoh_355", "SOC")])
    data = db.get_message_by_name("BMS_SocSoh_355").encode({"SOC": 42, "SOH": 100}) + b"\x10\x27"
    assert [(u.value, u.quality) for u in c.decode(0x355, data, 1)] == [(42, GOOD)]
    assert c.long_frames == 1 and c.decode_failures == 0


def test_unknown_id_is_counted_and_unbound_known_frames_are_not(db):
    c = CanCodec(BMS_DBC, [inp("Main.soc", "BMS_SocSoh_355", "SOC")])
    assert c.decode(0x7A5, bytes(8), 1) == []
    assert c.unknown_ids == 1 and c.stats()["last_unknown_id"] == "0x7A5"
    assert c.decode(0x356, frame_356(db), 2) == []      # in the DBC, nothing bound
    assert c.unknown_ids == 1 and c.rx_by_message["BMS_Measurements_356"] == 1


def test_encode_packs_scale_and_offset_and_fills_unbound_signals():
    c = CanCodec(CTRL_DBC)
    data = c.encode("CTRL_Command_4F0", {"PowerSetpoint": -123.4, "Enable": True})
    msg = cantools.database.load_file(CTRL_DBC).get_message_by_name("CTRL_Command_4F0")
    assert msg.decode(data) == {"PowerSetpoint": -123.4, "Enable": 1, "Mode": 0}
    assert int.from_bytes(data[0:2], "little", signed=True) == -1234


def test_encode_refuses_out_of_range_instead_of_clamping():
    c = CanCodec(CTRL_DBC)
    with pytest.raises(EncodeRefused, match=r"PowerSetpoint = 3000.1 is outside -3000..3000"):
        c.encode("CTRL_Command_4F0", {"PowerSetpoint": 3000.1})
    with pytest.raises(EncodeRefused, match="Mode = 4"):
        c.encode("0x4F0", {"Mode": 4})
    with pytest.raises(EncodeRefused, match="not a number"):
        c.encode("CTRL_Command_4F0", {"PowerSetpoint": float("nan")})
    with pytest.raises(EncodeRefused, match="no signal 'Power'"):
        c.encode("CTRL_Command_4F0", {"Power": 1.0})
    # [0|0] in a DBC means no limits: the raw width is the range
    assert c.encode("CTRL_Status_18FF50E5", {"Level": 255})[1] == 255
    with pytest.raises(EncodeRefused, match="outside 0..255"):
        c.encode("CTRL_Status_18FF50E5", {"Level": 256})


def test_output_points_without_transmit_entry_are_sent_on_change_and_cyclic():
    c = CanCodec(CTRL_DBC, [out("Main.p", "CTRL_Command_4F0", "PowerSetpoint", write="cyclic", period_ns=200),
                            out("Main.en", "CTRL_Command_4F0", "Enable")],
                 [CanTransmit("CTRL_Status_18FF50E5", period_ns=1000, on_change=False)])
    cmd, st = c.tx["CTRL_Command_4F0"], c.tx["CTRL_Status_18FF50E5"]
    assert cmd.bindings == [("PowerSetpoint", "Main.p"), ("Enable", "Main.en")]
    assert (cmd.period_ns, cmd.on_change) == (200, True)
    assert (st.period_ns, st.on_change, st.bindings) == (1000, False, [])


def test_unknown_message_or_signal_is_a_config_error_naming_close_matches():
    with pytest.raises(CanConfigError, match=r"Main.x: message BMS_SocSoh_355 has no signal 'SoC' \(did you mean SOC"):
        CanCodec(BMS_DBC, [inp("Main.x", "BMS_SocSoh_355", "SoC")])
    with pytest.raises(CanConfigError, match="did you mean INV_Heartbeat_305"):
        CanCodec(BMS_DBC, [], [CanTransmit("INV_Heartbeat_35")])


def test_missing_names_close_matches():
    assert missing(BMS_DBC, "BMS_Limits_351", "ChargeCurrentLimit") is None
    assert missing(BMS_DBC, "0x351") is None
    assert "did you mean BMS_Limits_351" in missing(BMS_DBC, "BMS_Limit_351", "ChargeCurrentLimit")
    assert "did you mean ChargeCurrentLimit" in missing(BMS_DBC, "BMS_Limits_351", "ChargeCurrentLimt")
    assert "(signals: SOC, SOH)" in missing(BMS_DBC, "BMS_SocSoh_355", "Temperature")
    assert missing(BMS_DBC, "0x999").startswith("no message '0x999' in bms_can.dbc")


def test_signal_range_tells_which_st_type_holds_the_signal():
    cur = signal_range(BMS_DBC, "BMS_Measurements_356", "BatteryCurrent")
    assert (cur.minimum, cur.maximum, cur.scale, cur.is_signed, cur.length) == (-3276.8, 3276.7, 0.1, True, 16)
    assert cur.st_type() == "REAL" and cur.holds("REAL") is None and cur.holds("LREAL") is None
    assert "INT cannot hold fractions (use REAL)" in cur.holds("INT")
    soc = signal_range(BMS_DBC, "0x355", "SOC")          # 16 bits, narrowed to [0|100] by the DBC
    assert (soc.minimum, soc.maximum, soc.st_type()) == (0, 100, "USINT")
    assert soc.holds("INT") is None and soc.holds("SINT") is None
    assert "BOOL cannot hold it" in soc.holds("BOOL")
    bit = signal_range(BMS_DBC, "BMS_ProtectionAlarm_359", "Prot_OverVoltage")
    assert bit.st_type() == "BOOL" and bit.holds("BOOL") is None
    payload = signal_range(BMS_DBC, "INV_Heartbeat_305", "Payload")
    assert payload.maximum == 2**64 - 1 and payload.st_type() == "ULINT"
    assert "UDINT holds 0..4294967295 (use ULINT)" in payload.holds("UDINT")
    with pytest.raises(CanConfigError, match="has no signal 'Nope'"):
        signal_range(BMS_DBC, "0x355", "Nope")


def test_unreadable_dbc_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.dbc"
    bad.write_text("BO_ this is not a dbc\n")
    with pytest.raises(CanConfigError, match="bad.dbc: cannot read the DBC"):
        CanCodec(str(bad))
    with pytest.raises(CanConfigError, match="cannot read the DBC"):
        missing(str(tmp_path / "none.dbc"), "x")


def test_an_extended_id_does_not_match_a_standard_message_of_the_same_number(db):
    c = CanCodec(BMS_DBC, [inp("Main.vBat", "0x356", "BatteryVoltage")])
    assert c.decode(0x356, frame_356(db), 1, is_extended=True) == []
    assert c.unknown_ids == 1
    assert [u.value for u in c.decode(0x356, frame_356(db), 2, is_extended=False)] == [52.1]
    s = CanCodec(CTRL_DBC, [inp("Main.n", "CTRL_Status_18FF50E5", "Counter")])
    assert [u.value for u in s.decode(0x18FF50E5, b"\x07\x00", 3, is_extended=True)] == [7]
    assert s.decode(0x18FF50E5, b"\x07\x00", 4, is_extended=False) == [] and s.unknown_ids == 1
