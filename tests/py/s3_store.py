#!/usr/bin/env python3
"""An S3-compatible store for the tests, on loopback: moto's S3 over HTTPS,
and in front of it a check of every request the way S3 checks one, written
from AWS's documentation of Signature Version 4 and done with botocore
(AWS's own library for Python), not with Tallybox's code:

- the `Authorization` header is `AWS4-HMAC-SHA256 Credential=KEY/DATE/
  REGION/s3/aws4_request, SignedHeaders=..., Signature=...`, for the one
  access key the store knows, dated as `x-amz-date` is, within 15 minutes;
- the signature botocore computes over the signed headers, with the secret
  key, is the one sent (else 403 SignatureDoesNotMatch, as S3 answers);
- `x-amz-content-sha256` is the SHA-256 of the body that arrived.

Usage:
  s3_store.py serve PORT CERT KEY CA ACCESS_KEY SECRET BUCKET
      serves until killed; makes BUCKET first; prints `ready`, then one
      JSON line per request: method, path, query, verdict.
  s3_store.py get PORT CA ACCESS_KEY SECRET BUCKET OBJECT OUT
      downloads OBJECT into OUT with boto3.
  s3_store.py put PORT CA ACCESS_KEY SECRET BUCKET OBJECT FILE
      uploads FILE as OBJECT with boto3.
  s3_store.py list PORT CA ACCESS_KEY SECRET BUCKET
      prints the bucket's object names, one a line.
"""

import datetime
import hashlib
import io
import json
import os
import re
import sys
import threading

os.environ["NO_PROXY"] = "127.0.0.1,localhost"
for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(name, None)

import boto3  # noqa: E402
from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$"
)


def error(status, code, message):
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    return status, body


def verdict(environ, body, access_key, secret):
    """None when the request is signed right; else (status, XML body)."""
    match = AUTHORIZATION.match(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return error("403 Forbidden", "AccessDenied", "no Signature Version 4 authorization")
    key, date, region, signed, signature = match.groups()
    if key != access_key:
        return error("403 Forbidden", "InvalidAccessKeyId", "The AWS access key Id you provided does not exist")
    headers = {}
    for name in signed.split(";"):
        if name == "content-length":
            value = environ.get("CONTENT_LENGTH")
        elif name == "content-type":
            value = environ.get("CONTENT_TYPE")
        else:
            value = environ.get("HTTP_" + name.upper().replace("-", "_"))
        if value is None:
            return error("403 Forbidden", "AccessDenied", f"signed header {name} is missing")
        headers[name] = value
    for required in ("host", "x-amz-date", "x-amz-content-sha256"):
        if required not in headers:
            return error("403 Forbidden", "AccessDenied", f"{required} is not signed")
    stamp = headers["x-amz-date"]
    when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 900 or stamp[:8] != date:
        return error("403 Forbidden", "RequestTimeTooSkewed", "The difference between the request time and the current time is too large")
    claimed = headers["x-amz-content-sha256"]
    if claimed != "UNSIGNED-PAYLOAD" and claimed != hashlib.sha256(body).hexdigest():
        return error("400 Bad Request", "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed")
    url = "https://" + headers["host"] + environ.get("RAW_URI", environ.get("PATH_INFO", "/"))
    request = AWSRequest(method=environ["REQUEST_METHOD"], url=url, headers=headers, data=body)
    request.context["timestamp"] = stamp
    auth = S3SigV4Auth(Credentials(access_key, secret), "s3", region)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if expected != signature:
        return error("403 Forbidden", "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided")
    return None


def serve(port, cert, key, ca, access_key, secret, bucket):
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    moto = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        refused = verdict(environ, body, access_key, secret)
        with lock:
            print(
                json.dumps(
                    {
                        "method": environ["REQUEST_METHOD"],
                        "path": environ.get("PATH_INFO", ""),
                        "query": environ.get("QUERY_STRING", ""),
                        "bytes": len(body),
                        "verdict": "ok" if refused is None else refused[1].decode(),
                    }
                ),
                flush=True,
            )
        if refused is not None:
            status, text = refused
            start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(text)))])
            return [text]
        return moto(environ, start_response)

    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=(cert, key))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client(port, ca, access_key, secret).create_bucket(Bucket=bucket)
    print("ready", flush=True)
    threading.Event().wait()


def client(port, ca, access_key, secret):
    return boto3.client(
        "s3",
        endpoint_url=f"https://127.0.0.1:{port}",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        verify=ca,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "serve":
        port, cert, key, ca, access_key, secret, bucket = args
        serve(int(port), cert, key, ca, access_key, secret, bucket)
    elif command == "get":
        port, ca, access_key, secret, bucket, name, out = args
        client(int(port), ca, access_key, secret).download_file(bucket, name, out)
    elif command == "put":
        port, ca, access_key, secret, bucket, name, path = args
        client(int(port), ca, access_key, secret).upload_file(path, bucket, name)
    elif command == "list":
        port, ca, access_key, secret, bucket = args
        listed = client(int(port), ca, access_key, secret).list_objects_v2(Bucket=bucket)
        for item in listed.get("Contents", []):
            print(item["Key"])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
