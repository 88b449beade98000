#!/usr/bin/python3
"""Decode SMS-SUBMIT PDUs with python-gammu, an implementation independent of ours.

Reads {"cases": [{"name": str, "pdus": [hex, ...]}, ...]} on stdin and writes, for
each case, what gammu makes of every part and of the parts linked together:
{"results": [{"name", "parts": [...], "groups": [[part index, ...]], "text", "error"}]}.

Used by tests/gammu_interop.rs. Needs Debian's python3-gammu, hence /usr/bin/python3.
"""

import json
import sys

try:
    import gammu
except ImportError as e:
    sys.stderr.write(
        "python3-gammu is not installed (%s): run `apt-get install python3-gammu` "
        "and use /usr/bin/python3\n" % e
    )
    sys.exit(3)


def part_text(sms):
    """python-gammu sizes Text by the septet count ('Length'), so a 7-bit text with k
    ESC pairs comes back with its NUL terminator and k-1 octets of whatever follows in
    memory. gammu's own buffer ends at the NUL; none of our test texts contains U+0000."""
    return sms["Text"].split("\0", 1)[0]


def part_summary(sms):
    udh = sms["UDH"]
    return {
        "type": sms["Type"],
        "number": sms["Number"],
        "text": part_text(sms),
        "coding": sms["Coding"],
        "udh_type": udh["Type"],
        "part_number": udh["PartNumber"],
        "all_parts": udh["AllParts"],
        "id8": udh["ID8bit"],
        "id16": udh["ID16bit"],
        "smsc": sms["SMSC"]["Number"],
        "validity": sms["SMSC"]["Validity"],
        "message_reference": sms["MessageReference"],
        "length": sms["Length"],
    }


def decode_case(case):
    result = {"name": case["name"], "parts": [], "groups": [], "text": None, "error": None}
    try:
        decoded = [gammu.DecodePDU(bytes.fromhex(pdu), True) for pdu in case["pdus"]]
        result["parts"] = [part_summary(sms) for sms in decoded]
        if len(decoded) == 1 and decoded[0]["UDH"]["Type"] == "NoUDH":
            result["groups"] = [[0]]
            result["text"] = part_text(decoded[0])
            return result
        # LinkSMS groups and orders parts by their concatenation header; feed them in
        # reverse so that the ordering is gammu's work, not ours.
        linked = gammu.LinkSMS([[sms] for sms in reversed(decoded)])
        # Identify the linked parts by their raw header octets (unique per part): the
        # dicts themselves differ between calls (see part_text).
        by_header = {bytes(sms["UDH"]["Text"]): i for i, sms in enumerate(decoded)}
        for group in linked:
            result["groups"].append(
                [by_header.get(bytes(sms["UDH"]["Text"]), -1) for sms in group]
            )
        if len(linked) == 1:
            info = gammu.DecodeSMS(linked[0])
            if info is None:
                result["error"] = "gammu.DecodeSMS could not link the parts"
            else:
                result["text"] = "".join(e["Buffer"] or "" for e in info["Entries"])
    except Exception as e:  # report gammu's complaint to the Rust side
        result["error"] = "%s: %s" % (type(e).__name__, e)
    return result


def main():
    request = json.load(sys.stdin)
    results = [decode_case(case) for case in request["cases"]]
    json.dump({"results": results}, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
