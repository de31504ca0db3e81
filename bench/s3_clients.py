# SPDX-License-Identifier: EUPL-1.2
"""Which S3 client for the chunk store? obstore against boto3 on the same S3 server, one run.

    S3_ENDPOINT_URL=... AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... python bench/s3_clients.py
    (or: python bench/s3_clients.py --engine ceph   to start Ceph RGW with scripts/engines)

Workloads shaped like cartable's: 2 MiB chunks (the chunker's average) put and got by 8 threads,
and 8 KiB objects (the smallest chunks) put by 8 threads. Each client runs interleaved rounds
(A B A B ...); the table gives medians and the client process's CPU per operation.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def make_clients(env: dict[str, str], bucket: str) -> dict[str, tuple[Callable[[str, bytes], None],
                                                                        Callable[[str], bytes]]]:
    import boto3
    import obstore
    from botocore.config import Config
    from obstore.store import S3Store

    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                      config=Config(max_pool_connections=32, request_checksum_calculation="when_required"))
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    ob = S3Store(bucket, endpoint=env["S3_ENDPOINT_URL"], access_key_id=env["AWS_ACCESS_KEY_ID"],
                 secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region="us-east-1",
                 client_options={"allow_http": True})
    return {
        "boto3": (lambda k, d: s3.put_object(Bucket=bucket, Key=k, Body=d) and None,
                  lambda k: s3.get_object(Bucket=bucket, Key=k)["Body"].read()),
        "obstore": (lambda k, d: obstore.put(ob, k, d) and None,
                    lambda k: bytes(obstore.get(ob, k).bytes())),
    }


def run(put: Callable[[str, bytes], None], get: Callable[[str], bytes], size: int, n: int,
        pool: ThreadPoolExecutor) -> tuple[float, float, float, float]:
    data = os.urandom(size)
    keys = [f"b/{uuid.uuid4().hex}" for _ in range(n)]
    c0, t0 = cpu(), time.perf_counter()
    list(pool.map(lambda k: put(k, data), keys))
    c1, t1 = cpu(), time.perf_counter()
    list(pool.map(get, keys))
    c2, t2 = cpu(), time.perf_counter()
    return n / (t1 - t0), n / (t2 - t1), (c1 - c0) / n * 1e3, (c2 - c1) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["ceph", "swift"], help="start this engine with scripts/engines")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    env = dict(os.environ)
    engine_dir = None
    if args.engine:
        script = ROOT / "scripts" / "engines" / f"s3-{args.engine}.sh"
        out = subprocess.run(["bash", str(script), "start"], check=True, capture_output=True, text=True).stdout
        env.update(line.split("=", 1) for line in out.splitlines() if "=" in line)
        engine_dir = env["CARTABLE_S3_DIR"]
    try:
        clients = make_clients(env, "bench-" + uuid.uuid4().hex[:8])
        pool = ThreadPoolExecutor(8)
        shapes = [("2 MiB x 64", 2 * 1024 * 1024, 64), ("8 KiB x 400", 8 * 1024, 400)]
        results: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
        for _ in range(args.rounds):
            for shape, size, n in shapes:
                for name, (put, get) in clients.items():
                    results.setdefault((shape, name), []).append(run(put, get, size, n, pool))
        print(f"{'workload':<14} {'client':<8} {'put/s':>8} {'get/s':>8} {'put CPU ms':>11} {'get CPU ms':>11}")
        for (shape, name), rows in results.items():
            med = [statistics.median(r[i] for r in rows) for i in range(4)]
            print(f"{shape:<14} {name:<8} {med[0]:8.1f} {med[1]:8.1f} {med[2]:11.2f} {med[3]:11.2f}")
    finally:
        if engine_dir:
            subprocess.run(["bash", str(ROOT / "scripts" / "engines" / f"s3-{args.engine}.sh"), "stop", engine_dir],
                           check=False)


if __name__ == "__main__":
    sys.exit(main())
