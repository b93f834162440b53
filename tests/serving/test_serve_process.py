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
