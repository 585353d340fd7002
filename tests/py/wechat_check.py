#!/usr/bin/env python3
"""Checks a log of calls to WeChat Pay's API v2 (one JSON line each: the
path, the XML the merchant posted, the XML it got back, the time in ms) as
pay.weixin.qq.com documents them, written from that documentation and not
from Tallybox's code:

- every request and every answer that carries `sign` is signed with
  sign_type HMAC-SHA256: the non-empty fields but `sign`, sorted by name,
  `name=value` joined by `&`, then `&key=<API key>`, HMAC-SHA256 keyed
  with the API key, upper-case hex;
- micropay carries appid, mch_id, nonce_str, body, out_trade_no,
  total_fee (whole fen), spbill_create_ip and auth_code;
- an order is reversed no sooner than 15 s after its micropay.

Usage: wechat_check.py CALLS.jsonl API_KEY_FILE
Prints a JSON report: checked, paths, errors.
"""

import hashlib
import hmac
import json
import sys
import xml.etree.ElementTree as ET


def fields(text):
    root = ET.fromstring(text)
    return {child.tag: (child.text or "") for child in root}


def signature(f, key):
    content = "&".join(f"{k}={v}" for k, v in sorted(f.items()) if k != "sign" and v != "")
    content += "&key=" + key
    return hmac.new(key.encode(), content.encode("utf-8"), hashlib.sha256).hexdigest().upper()


def main():
    log, key = sys.argv[1], open(sys.argv[2]).read().strip()
    report = {"checked": 0, "paths": {}, "errors": []}
    placed = {}
    for n, line in enumerate(open(log), 1):
        call = json.loads(line)
        if call.get("path", "/gateway.do") == "/gateway.do":
            continue  # Alipay's
        path = call["path"]
        report["checked"] += 1
        report["paths"][path] = report["paths"].get(path, 0) + 1
        request, answer = fields(call["form"]), fields(call["answer"])
        if request.get("sign_type") != "HMAC-SHA256":
            report["errors"].append(f"call {n} ({path}): sign_type {request.get('sign_type')!r}")
        if request.get("sign") != signature(request, key):
            report["errors"].append(f"call {n} ({path}): the request's signature does not verify")
        if "sign" in answer and answer["sign"] != signature(answer, key):
            report["errors"].append(f"call {n} ({path}): the answer's signature does not verify")
        order = request.get("out_trade_no", "")
        if path == "/pay/micropay":
            for required in ("appid", "mch_id", "nonce_str", "body", "out_trade_no", "total_fee",
                             "spbill_create_ip", "auth_code"):
                if not request.get(required):
                    report["errors"].append(f"call {n}: micropay without {required}")
            if not request.get("total_fee", "").isdigit():
                report["errors"].append(f"call {n}: total_fee {request.get('total_fee')!r} is not whole fen")
            placed.setdefault(order, call["at_ms"])
        if path == "/secapi/pay/reverse" and order in placed and call["at_ms"] - placed[order] < 15000:
            report["errors"].append(f"call {n}: order {order} reversed {call['at_ms'] - placed[order]} ms after it was placed")
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
