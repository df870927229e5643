"""Engineering units as OPC UA EUInformation (UNECE Recommendation 20 codes,
the namespace OPC UA Part 8 names). A unit not in the table keeps its text
as DisplayName with UnitId -1 ("not in the UNECE table")."""
from __future__ import annotations

from asyncua import ua

UNECE_URI = "http://www.opcfoundation.org/UA/units/un/cefact"

# unit text as written in I/O maps and pragmas -> UNECE common code
CODES = {
    "V": "VLT", "mV": "2Z", "kV": "KVT", "A": "AMP", "mA": "4K", "kA": "B22",
    "W": "WTT", "kW": "KWT", "MW": "MAW", "var": "D44", "kvar": "KVR", "VA": "D46", "kVA": "KVA",
    "Wh": "WHR", "kWh": "KWH", "MWh": "MWH", "Ah": "AMH", "Hz": "HTZ", "%": "P1",
    "degC": "CEL", "°C": "CEL", "K": "KEL", "s": "SEC", "ms": "C26", "min": "MIN", "h": "HUR",
    "Ohm": "OHM", "mOhm": "E45", "bar": "BAR", "Pa": "PAL", "kPa": "KPA",
}


def unit_id(code: str) -> int:
    n = 0
    for ch in code:
        n = (n << 8) | ord(ch)
    return n


def eu_information(unit: str) -> ua.EUInformation:
    code = CODES.get(unit)
    return ua.EUInformation(NamespaceUri=UNECE_URI, UnitId=unit_id(code) if code else -1,
                            DisplayName=ua.LocalizedText(unit), Description=ua.LocalizedText(unit))
