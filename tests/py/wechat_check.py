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
- an order is reversed no sooner than 15 s after its micropay;
- downloadbill asks for a day (`bill_date`, yyyyMMdd) and gets the bill as
  text: a header line, a line per order or refund with each field led by a
  backquote, then the totals' header and the totals. Each bill is read here
  as documented (SUCCESS lines' 订单金额 paid; REFUND lines' 申请退款金额
  given back; REVOKED orders paid and given back) and its totals reported.

Usage: wechat_check.py CALLS.jsonl API_KEY_FILE
Prints a JSON report: checked, paths, errors, bills ({day, paid, refunded,
lines} in fen).
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


def yuan_to_fen(text):
    whole, _, cents = text.strip().lstrip("-").partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def bill(day, text):
    lines = [l for l in text.splitlines() if l.strip()]
    header = lines[0].split(",")
    col = {name: i for i, name in enumerate(header)}
    report = {"day": day, "paid": 0, "refunded": 0, "lines": 0}
    for line in lines[1:]:
        if line.startswith("总交易单数"):
            break
        cells = [c[1:] if c.startswith("`") else c for c in line.split(",`")]
        state = cells[col["交易状态"]]
        report["lines"] += 1
        if state in ("SUCCESS", "REVOKED"):
            report["paid"] += yuan_to_fen(cells[col["订单金额"]])
        if state == "REFUND":
            report["refunded"] += yuan_to_fen(cells[col["申请退款金额"]])
        if state == "REVOKED":
            report["refunded"] += yuan_to_fen(cells[col["订单金额"]])
    return report


def main():
    log, key = sys.argv[1], open(sys.argv[2]).read().strip()
    report = {"checked": 0, "paths": {}, "errors": [], "bills": []}
    placed = {}
    for n, line in enumerate(open(log), 1):
        call = json.loads(line)
        if call.get("path", "/gateway.do") in ("/gateway.do", "/downloadBillFile.resource"):
            continue  # Alipay's
        path = call["path"]
        report["checked"] += 1
        report["paths"][path] = report["paths"].get(path, 0) + 1
        request = fields(call["form"])
        if path == "/pay/downloadbill" and not call["answer"].lstrip().startswith("<xml>"):
            day = request.get("bill_date", "")
            if not (len(day) == 8 and day.isdigit()):
                report["errors"].append(f"call {n}: bill_date {day!r} is not yyyyMMdd")
            report["bills"].append(bill(day, call["answer"]))
            answer = {}
        else:
            answer = fields(call["answer"])
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
