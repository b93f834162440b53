"""`committee serve` as a user runs it: a real uvicorn process on a free loopback port, stopped with
Ctrl-C; and the page in real Chromium driven by Playwright."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import REAL_DIR, real_data_available

pytest.importorskip("uvicorn")
HEADER_TIMEOUT = 1.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def server(finished_run, tmp_path_factory):
    """``committee serve`` in its own process; yields (base url, process); stopped with SIGINT."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "stderr.txt"
    env = {**os.environ, "XDG_CACHE_HOME": str(finished_run.parent / "cache")}
    cmd = [sys.executable, "-m", "committee", "serve", "--run-dir", str(finished_run), "--port", str(port)]
    cmd += ["--header-timeout", str(HEADER_TIMEOUT), "--max-header-kb", "16"]
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not port_open(port):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    try:
        yield url, proc, port, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()  # stopped cleanly
    assert not port_open(port)  # nothing left listening
    assert "Traceback" not in log.read_text()


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def test_serve_answers_and_stops_cleanly_on_ctrl_c(server, finished_run):
    url, proc, port, log = server
    assert get(f"{url}/healthz") == {"status": "ok"}
    x = np.load(finished_run.parent / "x.npy")
    body = json.dumps({"arrays": x.tolist()}).encode()
    req = urllib.request.Request(f"{url}/v1/predict", body, {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert len(json.loads(r.read())["predictions"]) == 4
    assert f"on http://127.0.0.1:{port}/" in log.read_text()


def test_a_port_in_use_is_one_line(server, finished_run):
    _, _, port, _ = server
    r = subprocess.run(
        [sys.executable, "-m", "committee", "serve", "--run-dir", str(finished_run), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and r.stderr.strip().startswith(f"committee: error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in r.stderr


def real_test_image() -> tuple[np.ndarray, int]:
    from committee.data.fashion_mnist import load_dataset

    ds = load_dataset(REAL_DIR, allow_download=False)
    return ds.images[ds.n_train_official].numpy(), int(ds.labels[ds.n_train_official])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it on Debian as root)")
@pytest.mark.skipif(not real_data_available(), reason="real Fashion-MNIST not installed (make test installs it)")
def test_the_page_in_chromium(server, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    url = server[0]
    image, _ = real_test_image()
    picture = tmp_path / "ankle-boot.png"  # the official test set's first image
    Image.fromarray(image).save(picture)
    expected = json.loads(
        urllib.request.urlopen(
            urllib.request.Request(
                f"{url}/v1/predict",
                json.dumps({"arrays": image.tolist()}).encode(),
                {"content-type": "application/json"},
            ),
            timeout=30,
        ).read()
    )["predictions"][0]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 760})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
            page.wait_for_function("document.getElementById('about').textContent.includes('committee of')")
            page.set_input_files("#picker", str(picture))
            card = page.locator("article.card").first
            card.wait_for(timeout=30_000)
            assert card.locator(".label").inner_text() == expected["label"]
            votes = card.locator("table.votes tr")
            assert votes.count() == 1 + len(expected["members"])  # a header row, then one row per member
            for member, vote in expected["members"].items():
                assert card.locator("table.votes").inner_text().count(member) == 1 and vote in card.inner_text()
            flags = card.locator(".flags li").all_inner_texts()
            assert flags == (expected["notes"] or ["the members agree"])
            assert "prediction set" in card.inner_text() and "ankle-boot.png" in card.inner_text()
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_the_serving_pages_python_example(server, finished_run, tmp_path, monkeypatch, capsys):
    """docs/guide/serving.md's client snippet, pointed at this test's port."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "guide" / "serving.md").read_text()
    snippet = re.findall(r"```python\n(.*?)```", page, re.S)[0].replace("127.0.0.1:8000", server[0].split("//")[1])
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.load(finished_run.parent / "x.npy")[0]).save("boot.png")
    exec(compile(snippet, "serving.md", "exec"), {})
    out = capsys.readouterr().out
    probability = float(re.search(r" (0\.\d+|1\.0) \[", out).group(1))  # label, probability, set, notes
    assert 0 < probability <= 1 and out.split(" ")[0]


def raw_exchange(port: int, chunks, pause: float = 0.0, wait: float = 10.0) -> tuple[bytes, float]:
    """Send ``chunks`` (bytes each, ``pause`` s apart, stopping if the server closes); return what the
    server answered before closing, and the seconds until it closed."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        try:
            for chunk in chunks:
                s.sendall(chunk)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        try:
            while data := s.recv(65536):
                received += data
        except (ConnectionResetError, TimeoutError):
            pass
    return received, time.monotonic() - start


def test_oversized_headers_are_a_431_and_a_closed_connection(server):
    """Issue 41, hostile input 9: a 200 MB header was read whole, holding /healthz for everyone."""
    url, proc, port, log = server
    flood = (b"x" * 60_000 for _ in range(4000))  # up to 240 MB, if the server kept reading
    head = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: "
    answer, seconds = raw_exchange(port, [head, *flood])
    assert answer.startswith(b"HTTP/1.1 431") and b"--max-header-kb" in answer
    assert seconds < 5
    assert get(url + "/healthz") == {"status": "ok"}


def test_a_slow_client_is_cut_off_at_the_header_timeout(server):
    url, proc, port, log = server
    drip = [b"GET /healthz HTTP/1.1\r\n"] + [b"x-slow: 1\r\n"] * 20  # one header line every 0.5 s: 10 s
    answer, seconds = raw_exchange(port, drip, pause=0.5)
    assert answer.startswith(b"HTTP/1.1 408") and b"--header-timeout" in answer
    assert HEADER_TIMEOUT <= seconds < HEADER_TIMEOUT + 3
    silent, seconds = raw_exchange(port, [])  # connects and sends nothing at all
    assert silent.startswith(b"HTTP/1.1 408") and seconds < HEADER_TIMEOUT + 3
    # A request sent at once is untouched, and so is a keep-alive connection's second request.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for _ in range(2):
            s.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            reply = s.recv(65536)
            while not reply.endswith(b"}"):
                reply += s.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b'{"status":"ok"}')
            time.sleep(HEADER_TIMEOUT + 0.5)  # idle between requests: the keep-alive's business, not ours
