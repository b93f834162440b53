"""Load test of `committee serve` on loopback, against in-process `Committee.predict` on the same images.

    python benchmarks/serve_load.py --run-dir runs/quick [--clients 8] [--screenshot docs/guide/serve.png]
    python benchmarks/serve_load.py --run-dir runs/fast --rule cascade --out benchmarks/results/serve_load_cascade.json

Starts the service on a free 127.0.0.1 port, sends a bounded number of requests from N concurrent
clients (single images, then batches of 64, as PNG uploads), stops the service, and writes
benchmarks/results/serve_load.json: requests/s, images/s, p50/p99 latency, the server's mean batch
size, and the served/in-process throughput ratios. With --screenshot it also opens the page in
Chromium (Playwright), drops a real Fashion-MNIST test image on it and saves the screenshot.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def in_process(committee, images: np.ndarray, batch: int, repeats: int = 3) -> dict:
    """Best of ``repeats`` passes over ``images`` in batches of ``batch`` (after one warm-up batch)."""
    committee.predict(images[:batch])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(images), batch):
            committee.predict(images[i : i + batch])
        best = min(best, time.perf_counter() - start)
    return {"batch": batch, "images": len(images), "seconds": best, "images_per_s": len(images) / best}


class RawClient:
    """A keep-alive HTTP/1.1 client on a plain socket: requests are prebuilt bytes and a response is read
    by its Content-Length, so the load generator costs little of the CPU it shares with the server
    (httpx spent more per request than the service itself)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buffer = b""

    def request(self, raw: bytes) -> tuple[int, bytes]:
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        length = next(
            int(v) for k, v in (h.split(b":", 1) for h in lines[1:]) if k.strip().lower() == b"content-length"
        )
        while len(self.buffer) < length:
            self.buffer += self.sock.recv(65536)
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), body

    def close(self) -> None:
        self.sock.close()


def http_request(body: bytes) -> bytes:
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def load(url: str, bodies: list[bytes], per_request: int, clients: int) -> dict:
    """``clients`` threads share the list of request bodies; each request's latency is kept."""
    port = int(url.rsplit(":", 1)[1])
    raw = [http_request(b) for b in bodies]
    latencies: list[float] = []
    failures: list[str] = []
    cursor = iter(range(len(raw)))
    lock = threading.Lock()

    def client() -> None:
        conn = RawClient(port)
        try:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                start = time.perf_counter()
                status, body = conn.request(raw[i])
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    if status != 200 or body.count(b'"file"') != per_request:
                        failures.append(f"{status} {body[:100]!r}")
        finally:
            conn.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {
        "clients": clients,
        "requests": len(bodies),
        "images_per_request": per_request,
        "failures": len(failures),
        "seconds": wall,
        "requests_per_s": len(bodies) / wall,
        "images_per_s": len(bodies) * per_request / wall,
        "latency_ms": {
            "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)),
            "max": float(lat.max()),
        },
    }


BOUNDARY = "committee-load-test"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(pictures: list[bytes]) -> bytes:
    """One request body with the pictures as files (built once, so clients spend no time encoding)."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{i}.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + p
        + b"\r\n"
        for i, p in enumerate(pictures)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


@contextlib.contextmanager
def serving(run_dir: Path, *flags: str):
    """``committee serve`` on a free loopback port for the block; yields its URL; stopped with SIGINT."""
    port = free_port()
    cmd = [sys.executable, "-m", "committee", "serve", "--run-dir", str(run_dir), "--port", str(port), *flags]
    server = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        while not listening(port):
            if server.poll() is not None:
                raise SystemExit(server.stderr.read())
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def batches_seen(url: str) -> int:
    import httpx

    return httpx.get(f"{url}/v1/model").json()["batching"]["batches"]


def screenshot(url: str, image: np.ndarray, out: Path) -> None:
    import shutil
    import tempfile

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        picture = Path(tmp) / "test-image-0.png"
        picture.write_bytes(png(image))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 980, "height": 640})
            page.goto(url + "/")
            page.wait_for_function("document.getElementById('about').textContent.includes('committee of')")
            page.set_input_files("#picker", str(picture))
            page.locator("article.card").first.wait_for(timeout=30_000)
            page.screenshot(path=str(out), full_page=True)
            browser.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--single", type=int, default=600, help="single-image requests")
    p.add_argument("--batched", type=int, default=40, help="requests of 64 images")
    p.add_argument("--out", type=Path, default=RESULTS / "serve_load.json")
    p.add_argument("--screenshot", type=Path, help="also save the page's screenshot here")
    p.add_argument("--rule", help="the committee rule to serve (default: the run's, calibrated)")
    args = p.parse_args()
    rule_flags = ("--rule", args.rule) if args.rule else ()

    import torch

    from committee.base.fileio import write_json
    from committee.base.machine import environment
    from committee.data.fashion_mnist import load_dataset
    from committee.serving.trained import Committee

    ds = load_dataset(allow_download=False)
    test = ds.images[ds.n_train_official :].numpy()
    committee = Committee.load(args.run_dir, *((args.rule,) if args.rule else ()))
    images = test[: max(args.single, 64 * args.batched)]
    doc = {
        "environment": environment("cpu"),
        "threads": torch.get_num_threads(),
        "command": " ".join(["python benchmarks/serve_load.py", *sys.argv[1:]]),
        "run": {"members": committee.members, "rule": committee.rule},
        "in_process": {
            "batch_64": in_process(committee, images[: 64 * args.batched], 64),
            "one_at_a_time": in_process(committee, images[: args.single], 1, repeats=1),
        },
    }
    pictures = [png(x) for x in images]
    singles = [multipart([pic]) for pic in pictures[: args.single]]
    batched_bodies = [multipart(pictures[i * 64 : (i + 1) * 64]) for i in range(args.batched)]
    with serving(args.run_dir, *rule_flags) as url:
        load(url, [multipart([p]) for p in pictures[:16]], 1, args.clients)  # warm-up
        before = batches_seen(url)
        single = load(url, singles, 1, args.clients)
        single["server_batches"] = batches_seen(url) - before
        single["mean_batch"] = args.single / single["server_batches"]
        batched = load(url, batched_bodies, 64, args.clients)
        if args.screenshot:
            screenshot(url, test[0], args.screenshot)
    with serving(args.run_dir, "--max-batch", "1", *rule_flags) as url:  # the same load without micro-batching
        load(url, [multipart([p]) for p in pictures[:16]], 1, args.clients)
        unbatched = load(url, singles, 1, args.clients)
    doc["served"] = {"single_images": single, "batches_of_64": batched, "single_images_unbatched": unbatched}
    ref = doc["in_process"]["batch_64"]["images_per_s"]
    doc["ratio_to_in_process_batch_64"] = {
        "single_images": single["images_per_s"] / ref,
        "batches_of_64": batched["images_per_s"] / ref,
        "single_images_unbatched": unbatched["images_per_s"] / ref,
    }
    doc["micro_batching_speedup"] = single["images_per_s"] / unbatched["images_per_s"]
    write_json(args.out, doc)
    keys = ("in_process", "served", "ratio_to_in_process_batch_64", "micro_batching_speedup")
    print(json.dumps({k: doc[k] for k in keys}, indent=1))


if __name__ == "__main__":
    main()
