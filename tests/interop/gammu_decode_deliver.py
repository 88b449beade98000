#!/usr/bin/python3
"""Decode SMS-DELIVER PDUs with python-gammu, independent of our decoder.

Reads {"pdus": [hex, ...]} on stdin, writes {"results": [{"type", "number", "text",
"coding", "udh_type", "part_number", "all_parts", "error"}]}: text is null for 8-bit
data. Used by tests/gammu_interop.rs. Needs Debian's python3-gammu (/usr/bin/python3).
"""

import json
import sys

try:
    import gammu
except ImportError as e:
    sys.stderr.write("python3-gammu is not installed (%s)\n" % e)
    sys.exit(3)


def decode(pdu):
    try:
        sms = gammu.DecodePDU(bytes.fromhex(pdu), True)
    except Exception as e:  # report gammu's complaint to the Rust side
        return {"error": "%s: %s" % (type(e).__name__, e)}
    text = sms["Text"]
    return {
        "type": sms["Type"],
        "number": sms["Number"],
        # See gammu_decode.py: the text ends at gammu's NUL terminator.
        "text": text.split("\0", 1)[0] if isinstance(text, str) else None,
        "coding": sms["Coding"],
        "udh_type": sms["UDH"]["Type"],
        "part_number": sms["UDH"]["PartNumber"],
        "all_parts": sms["UDH"]["AllParts"],
        "error": None,
    }


def main():
    request = json.load(sys.stdin)
    json.dump({"results": [decode(p) for p in request["pdus"]]}, sys.stdout)


if __name__ == "__main__":
    main()
