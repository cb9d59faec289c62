"""Load on `translate-server`, with and without its batching window, through its own API and
LibreTranslate's: a fixed number of clients, each sending one test-set line a request and the
next as soon as it is answered, for a fixed time, against a server this script starts on
127.0.0.1 (it targets nothing else).

    python bench/serve_load.py --model models/transformer [--clients 4] [--seconds 20]
        [--windows 0 5] [--apis native libretranslate] [--beam 5] [--max-len 100]
        [--out bench/results/serve_load.json]

Each row: the API, the window, requests answered per second, and the median and
99th-percentile latency of a request, after a warm-up. LibreTranslate's requests carry no
search settings: the package's search (decoding.json) answers them, as it answers native
requests without --beam and --max-len.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from nmt.io import write_json
from nmt.package import PackageConfig
from nmt.paths import RAW
from nmt.runtime import describe
from nmt.tokenization import read_lines

HOST = "127.0.0.1"  # the only target: the server started here
SERVER = Path(sys.executable).parent / "translate-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def started(model: Path, window_ms: float) -> tuple[subprocess.Popen, int]:
    port = free_port()
    args = ["--model", str(model), "--host", HOST, "--port", str(port)]
    server = subprocess.Popen(
        [str(SERVER), *args, "--batch-window-ms", str(window_ms)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"translate-server --model {model} did not start")


def request(body: dict, line: str) -> str:
    """The JSON body asking for `line`: LibreTranslate's (`q`, a string) or ours (`text`)."""
    return json.dumps(body | ({"q": line} if "source" in body else {"text": [line]}))


def client(port: int, body: dict, lines: list[str], until: float, latencies: list[float]):
    """Requests one after another on one connection until `until`; their latencies."""
    connection = http.client.HTTPConnection(HOST, port, timeout=300)
    headers = {"content-type": "application/json"}
    for number in range(sys.maxsize):
        if time.perf_counter() >= until:
            break
        payload = request(body, lines[number % len(lines)])
        start = time.perf_counter()
        connection.request("POST", "/translate", payload, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"the server answered {response.status}")
        latencies.append(time.perf_counter() - start)


def load(port: int, body: dict, lines: list[str], clients: int, seconds: float) -> dict:
    """`clients` clients for `seconds`, each on its own share of the lines."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    start = time.perf_counter()
    threads = [
        threading.Thread(
            target=client, args=(port, body, lines[i::clients], start + seconds, latencies[i])
        )
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start  # the last answer included
    every = sorted(t for one in latencies for t in one)
    percentiles = statistics.quantiles(every, n=100, method="inclusive")
    return {
        "requests": len(every),
        "requests_per_second": len(every) / elapsed,
        "p50_ms": 1000 * statistics.median(every),
        "p99_ms": 1000 * percentiles[98],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/transformer"))
    parser.add_argument("--test-set", default="test_2016_flickr")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--windows", type=float, nargs="+", default=[0, 5], help="ms")
    parser.add_argument(
        "--apis", nargs="+", choices=("native", "libretranslate"), default=["native"]
    )
    parser.add_argument("--beam", type=int, help="native requests' beam (server default)")
    parser.add_argument("--max-len", type=int, help="native requests' output tokens at most")
    parser.add_argument("--out", help="the table as JSON")
    args = parser.parse_args()
    lines = read_lines(RAW / f"{args.test_set}.de")
    native: dict = {"model": args.model.resolve().name}
    native |= {"beam": args.beam} if args.beam else {}
    native |= {"max_len": args.max_len} if args.max_len else {}
    source, target = PackageConfig.read(args.model).langs
    bodies = {"native": native, "libretranslate": {"source": source, "target": target}}
    machine = describe()
    print(f"{machine['cpu']} ({', '.join(machine['flags'])}), {machine['torch_threads']} threads")
    rows = []
    for window in args.windows:
        server, port = started(args.model, window)
        try:
            for api in args.apis:
                body = bodies[api]
                load(port, body, lines[-20:], 1, 2)  # warm-up, on the test set's last lines
                row = {"api": api, "window_ms": window, "clients": args.clients}
                row |= {"seconds": args.seconds, "request": body}
                rows.append(row | load(port, body, lines, args.clients, args.seconds))
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"{args.model}, {args.test_set}, {args.clients} clients x {args.seconds:g} s")
    print("| API | batching window | requests | requests/s | p50 latency | p99 latency |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        window = f"{row['window_ms']:g} ms" if row["window_ms"] else "off"
        print(
            f"| {row['api']} | {window} | {row['requests']} | "
            f"{row['requests_per_second']:.1f} | {row['p50_ms']:.0f} ms | {row['p99_ms']:.0f} ms |"
        )
    if args.out:
        settings = vars(args) | {"model": str(args.model)}
        write_json(args.out, {"machine": machine, "settings": settings, "rows": rows})


if __name__ == "__main__":
    main()
