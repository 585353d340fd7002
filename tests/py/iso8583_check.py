"""Decodes every message of a Tallybox acquirer message log with pyiso8583
(an independent ISO 8583 codec, "default" 1987 spec: ASCII type, binary
bitmap, ASCII data and lengths, with field 62 binary as ACQUIRER.md says: the
working keys of a sign-in answer) and encodes it back: the bytes must be equal.
Prints one JSON object: how many were checked, the message types seen, the
fields each type carried, the currencies (field 49) each type named, and
every failure."""

import copy
import json
import sys

import iso8583
from iso8583.specs import default

spec = copy.deepcopy(default)
spec["62"]["data_enc"] = "b"


def main(path):
    checked, types, fields, currencies, errors = 0, [], {}, {}, []
    with open(path) as log:
        for n, line in enumerate(log, 1):
            direction, hexdata = line.split()
            raw = bytes.fromhex(hexdata)
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
    main(sys.argv[1])
