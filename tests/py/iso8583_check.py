"""Decodes every message of a Tallybox acquirer message log with pyiso8583
(an independent ISO 8583 codec) and encodes it back: the bytes must be equal.

Two specifications, written from hub/ACQUIRER.md:
- iso8583-1987 (the default): pyiso8583's "default" 1987 spec (ASCII type,
  binary bitmap, ASCII data and lengths), with field 62 binary (the working
  keys of a sign-in answer).
- cup-pos (`--dialect cup-pos`): China UnionPay's POS layout: each frame
  starts with a TPDU (ID 60) and a 6-byte header, which are checked and
  cut; then a BCD message type, numeric fields in BCD (left-aligned where
  the document says so), BCD length prefixes, text in ASCII.

Prints one JSON object: how many were checked, the message types seen, the
fields each type carried, the currencies (field 49) each type named, and
every failure."""

import copy
import json
import sys

import iso8583
from iso8583.specs import default

ISO_1987 = copy.deepcopy(default)
ISO_1987["62"]["data_enc"] = "b"


def cup_pos():
    spec = copy.deepcopy(default)
    spec["t"] = dict(spec["t"], data_enc="b", max_len=2)

    def bcd(field, digits, prefix=0, left=False):
        spec[field] = {
            "data_enc": "b",
            "len_enc": "bcd",
            "len_type": prefix,
            "max_len": digits,
            "len_count": "nibbles",
            "desc": spec[field]["desc"],
        }
        spec[field]["right_pad" if left else "left_pad"] = "0"

    def text(field, size, prefix=0, binary=False):
        spec[field] = {
            "data_enc": "b" if binary else "ascii",
            "len_enc": "bcd",
            "len_type": prefix,
            "max_len": size,
            "desc": spec[field]["desc"],
        }

    bcd("2", 19, prefix=1, left=True)
    for field, digits in [("3", 6), ("4", 12), ("11", 6), ("12", 6), ("13", 4), ("14", 4),
                          ("23", 3), ("25", 2), ("26", 2), ("53", 16)]:
        bcd(field, digits)
    bcd("22", 3, left=True)
    bcd("35", 37, prefix=1, left=True)
    for field in ["48", "60", "61"]:
        bcd(field, 999, prefix=2, left=True)
    text("54", 240, prefix=2)
    text("55", 255, prefix=2, binary=True)
    text("62", 999, prefix=2, binary=True)
    text("63", 999, prefix=2)
    return spec


CUP_POS = cup_pos()
CUP_HEADER = bytes.fromhex("603100310000")


def main(path, dialect):
    spec = CUP_POS if dialect == "cup-pos" else ISO_1987
    checked, types, fields, currencies, errors = 0, [], {}, {}, []
    with open(path) as log:
        for n, line in enumerate(log, 1):
            direction, hexdata = line.split()
            raw = bytes.fromhex(hexdata)
            if dialect == "cup-pos":
                if raw[:1] != b"\x60" or raw[5:11] != CUP_HEADER:
                    errors.append(f"line {n} ({direction}): no TPDU 60 and header {CUP_HEADER.hex()}")
                    continue
                raw = raw[11:]
            try:
                decoded, _ = iso8583.decode(raw, spec)
                again, _ = iso8583.encode(decoded, spec)
            except Exception as e:  # any failure is the finding
                errors.append(f"line {n} ({direction}): {e}")
                continue
            if bytes(again) != raw:
                errors.append(f"line {n} ({direction}): re-encoded bytes differ")
            checked += 1
            mti = decoded["t"]
            types.append(mti)
            fields.setdefault(mti, sorted({int(k) for k in decoded if k.isdigit()}))
            if "49" in decoded:
                named = currencies.setdefault(mti, [])
                if decoded["49"] not in named:
                    named.append(decoded["49"])
    print(json.dumps({"checked": checked, "types": types, "fields": fields,
                      "currencies": currencies, "errors": errors}))


if __name__ == "__main__":
    args = sys.argv[1:]
    dialect = "iso8583-1987"
    if args[:1] == ["--dialect"]:
        dialect, args = args[1], args[2:]
    main(args[0], dialect)
