"""An S3-compatible server for the job cache's tests: moto in server mode
on 127.0.0.1 and a free port, with one bucket.

Usage: server.py BUCKET. Prints `port=N` once it serves; then, for each
line `count PREFIX` on stdin, prints `count=N`, the number of objects under
PREFIX in the bucket. Ends when stdin closes.
"""

import sys

import boto3
from moto.server import ThreadedMotoServer


def main() -> None:
    bucket = sys.argv[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3.create_bucket(Bucket=bucket)
    print(f"port={port}", flush=True)
    for line in sys.stdin:
        command, _, prefix = line.strip().partition(" ")
        if command == "count":
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            count = sum(len(page.get("Contents", [])) for page in pages)
            print(f"count={count}", flush=True)
    server.stop()


main()
