#!/usr/bin/env python3
"""Checks a log of calls to Alipay's gateway (one JSON line each: the form
the merchant posted, the answer it got) the way Alipay's open platform
documents its signatures, written from that documentation and not from
Tallybox's code:

- a request's `sign` is RSA2 (SHA256withRSA, PKCS#1 v1.5) over every other
  parameter with a non-empty value, sorted by name, as `name=value` joined
  by `&`, values as they are (not URL-encoded); checked with the merchant's
  application public key;
- an answer `{"<method with _>_response": {...}, "sign": "..."}` is signed
  over the response object's text exactly as sent, located the way Alipay's
  SDKs do (from after `"<node>":` to before `,"sign"`); checked with
  Alipay's public key.

- a bill downloaded from the address `alipay.data.dataservice.bill.
  downloadurl.query` gave is a zip archive whose business details
  (`…_业务明细.csv`, GBK) list, after `#` notes and a header, rows of type
  交易 (paid: 订单金额) and 退款 (given back: its negative 订单金额); each is
  read here as documented and its totals reported.

Usage: alipay_check.py CALLS.jsonl APP_PUBLIC_KEY ALIPAY_PUBLIC_KEY
Prints a JSON report: checked, methods, errors, bills ({paid, refunded,
rows} in fen, the day as yyyyMMdd).
"""

import base64
import io
import json
import sys
import zipfile
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def public_key(path):
    text = open(path).read()
    body = "".join(l for l in text.splitlines() if not l.startswith("-----"))
    return serialization.load_der_public_key(base64.b64decode(body))


def verified(key, content, signature):
    try:
        key.verify(base64.b64decode(signature), content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return True
    except (InvalidSignature, ValueError):
        return False


def fen(text):
    whole, _, cents = text.strip().lstrip("-").partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def bill(day, archive):
    report = {"day": day, "paid": 0, "refunded": 0, "rows": 0}
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        for info in z.infolist():
            text = z.read(info).decode("gbk")
            rows = [l for l in text.splitlines() if l.strip() and not l.startswith("#")]
            if not rows or not rows[0].startswith("支付宝交易号,"):
                continue  # the summary
            col = {name: i for i, name in enumerate(rows[0].split(","))}
            for row in rows[1:]:
                cells = [c.strip() for c in row.split(",")]
                kind, amount = cells[col["业务类型"]], fen(cells[col["订单金额（元）"]])
                report["rows"] += 1
                if kind == "交易":
                    report["paid"] += amount
                elif kind == "退款":
                    report["refunded"] += amount
    return report


def main():
    log, app_key, alipay_key = sys.argv[1], public_key(sys.argv[2]), public_key(sys.argv[3])
    report = {"checked": 0, "methods": {}, "errors": [], "bills": []}
    for n, line in enumerate(open(log), 1):
        call = json.loads(line)
        if call.get("path") == "/downloadBillFile.resource":
            day = dict(parse_qsl(call["form"])).get("bizDates", "")
            report["bills"].append(bill(day, base64.b64decode(call["answer"])))
            continue
        if call.get("path", "/gateway.do") != "/gateway.do":
            continue  # another provider's call
        params = dict(parse_qsl(call["form"], keep_blank_values=True))
        method = params.get("method", "")
        report["checked"] += 1
        report["methods"][method] = report["methods"].get(method, 0) + 1
        content = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v != "")
        if params.get("sign_type") != "RSA2":
            report["errors"].append(f"call {n}: sign_type {params.get('sign_type')!r}, not RSA2")
        if not verified(app_key, content, params.get("sign", "")):
            report["errors"].append(f"call {n} ({method}): the request's signature does not verify")
        for required in ("app_id", "method", "charset", "timestamp", "version", "biz_content"):
            if not params.get(required):
                report["errors"].append(f"call {n} ({method}): no {required}")
        biz = json.loads(params.get("biz_content", "{}"))
        if method == "alipay.trade.pay":
            for required in ("out_trade_no", "scene", "auth_code", "subject", "total_amount"):
                if not biz.get(required):
                    report["errors"].append(f"call {n}: trade.pay without {required}")
            amount = biz.get("total_amount", "")
            whole, _, cents = amount.partition(".")
            if not (whole.isdigit() and len(cents) == 2 and cents.isdigit()):
                report["errors"].append(f"call {n}: total_amount {amount!r} is not yuan with two decimals")
        answer = call["answer"]
        node = method.replace(".", "_") + "_response"
        start = answer.find(f'"{node}":')
        if start < 0:
            start = answer.find('"error_response":')
            node = "error_response"
        start = answer.index(":", start) + 1
        end = answer.rindex(',"sign"')
        signature = json.loads(answer)["sign"]
        if not verified(alipay_key, answer[start:end], signature):
            report["errors"].append(f"call {n} ({method}): the answer's signature does not verify")
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
