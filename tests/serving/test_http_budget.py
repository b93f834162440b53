"""The service's decoded-pixel budget and its per-request timeout (issue 41, hostile input 8 and 14)."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from committee.serving import decoding  # noqa: E402
from committee.serving.http_app import ServiceSettings, create_app  # noqa: E402
from committee.serving.trained import Committee  # noqa: E402


def rgba_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((side, side, 4), 200, np.uint8), "RGBA").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def serve(finished_run, monkeypatch):
    """A function: settings -> a started TestClient over the session's finished run."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(finished_run.parent / "cache"))
    committee = Committee.load(finished_run)
    clients = []

    def start(**settings) -> TestClient:
        client = TestClient(create_app(committee, ServiceSettings(max_wait_ms=2, **settings)))
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def slow_decoding(monkeypatch, seconds: float) -> None:
    real = decoding.decode_picture

    def slow(data, name, rules):
        time.sleep(seconds)
        return real(data, name, rules)

    monkeypatch.setattr(decoding, "decode_picture", slow)


def test_pictures_over_the_whole_budget_are_a_413_before_any_decoding(serve, monkeypatch):
    client = serve(max_decoded_bytes=1 << 20)
    decoded = []
    real = decoding.decode_picture
    monkeypatch.setattr(decoding, "decode_picture", lambda *a: decoded.append(a) or real(*a))
    picture = rgba_png(600)  # 600 x 600 x 4 = 1.44 MB decoded, from a PNG of a few KB
    r = client.post("/v1/predict", files=[("files", ("big.png", picture, "image/png"))])
    assert r.status_code == 413 and "--max-decoded-mb" in r.json()["error"] and not decoded
    small = rgba_png(100)
    r = client.post("/v1/predict", files=[("files", ("small.png", small, "image/png"))])
    assert r.status_code == 200 and len(decoded) == 1


def test_concurrent_requests_decode_no_more_than_the_budget_at_once(serve, monkeypatch):
    side = 300
    client = serve(max_decoded_bytes=side * side * 4 + 1000)  # room for one picture at a time
    slow_decoding(monkeypatch, 0.3)
    picture, codes = rgba_png(side), []

    def send():
        codes.append(client.post("/v1/predict", files=[("files", ("p.png", picture, "image/png"))]).status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    budget = client.app.state.decoder.budget
    assert codes == [200] * 4
    assert budget.peak == side * side * 4 and budget.used == 0  # one at a time, and every byte returned
    assert wall >= 4 * 0.3  # they waited for each other rather than decoding together


def test_the_timeout_covers_decoding_and_the_budget_comes_back_when_the_thread_ends(serve, monkeypatch):
    client = serve(timeout_s=0.5)
    slow_decoding(monkeypatch, 1.5)
    start = time.perf_counter()
    r = client.post("/v1/predict", files=[("files", ("p.png", rgba_png(50), "image/png"))])
    assert r.status_code == 503 and "--timeout" in r.json()["error"]
    assert time.perf_counter() - start < 1.4  # answered at the timeout, not after the decoding
    budget = client.app.state.decoder.budget
    assert budget.used == 50 * 50 * 4  # the decoding thread still holds its pixels
    deadline = time.time() + 5
    while budget.used and time.time() < deadline:
        client.get("/healthz")  # lets the event loop run the release
        time.sleep(0.05)
    assert budget.used == 0
