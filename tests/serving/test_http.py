"""The HTTP service in-process (FastAPI's TestClient): answers, limits and refusals."""

import base64
import io
import struct
import zlib

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from committee.serving.http_app import ServiceSettings, create_app  # noqa: E402
from committee.serving.trained import Committee  # noqa: E402


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def png_bomb(width=20000, height=20000) -> bytes:
    """A valid PNG header declaring 400 megapixels, with a few bytes of image data: what a
    decompression bomb looks like to a reader that decodes before it checks."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def served(finished_run):
    """(client, committee, images) over the session's finished run; small caps to test them cheaply."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(finished_run.parent / "cache"))
        committee = Committee.load(finished_run)
        settings = ServiceSettings(max_body_bytes=200_000, max_request_images=8, max_wait_ms=2)
        with TestClient(create_app(committee, settings), raise_server_exceptions=False) as client:
            yield client, committee, np.load(finished_run.parent / "x.npy")


def test_health_model_and_card(served):
    client, committee, _ = served
    assert client.get("/healthz").json() == {"status": "ok"}
    doc = client.get("/v1/model").json()
    metrics = committee.run.read_metrics().committees[committee.rule].test
    assert doc["classes"] == committee.classes and doc["members"] == committee.members
    assert doc["input_shape"] == [1, 28, 28] and doc["rule"] == "calibrated"
    assert doc["accuracy"]["value"] == pytest.approx(metrics.accuracy)
    assert doc["accuracy"]["ci95"] == pytest.approx(list(metrics.accuracy_ci))
    assert doc["prediction_sets"]["alpha"] == 0.1 and 0 < doc["abstention"]["confidence_threshold"] <= 1
    card = client.get("/v1/model/card")
    assert (
        card.status_code == 200 and card.text.startswith("# Model card") and "markdown" in card.headers["content-type"]
    )


def test_every_input_form_gives_the_in_process_answer(served):
    client, committee, x = served
    expected = committee.explain(x)
    files = [("files", (f"{i}.png", png(img), "image/png")) for i, img in enumerate(x)]
    by_form = client.post("/v1/predict", files=files).json()["predictions"]
    by_b64 = client.post("/v1/predict", json={"images": [base64.b64encode(png(img)).decode() for img in x]}).json()
    by_array = client.post("/v1/predict?top_k=5", json={"arrays": x.tolist()}).json()["predictions"]
    for answers in (by_form, by_b64["predictions"], by_array):
        assert [a["index"] for a in answers] == expected.labels.tolist()
        np.testing.assert_allclose([a["probability"] for a in answers], expected.probs.max(1), rtol=1e-5)
    row = by_array[0]
    assert len(row["top_k"]) == 5 and set(row["members"]) == set(committee.members)
    assert {"abstained", "out_of_distribution", "confidence_threshold", "ood_threshold", "prediction_set"} <= set(row)
    assert [a["file"] for a in by_form] == ["0.png", "1.png", "2.png", "3.png"]
    data_url = "data:image/png;base64," + base64.b64encode(png(x[0])).decode()
    assert (
        client.post("/v1/predict", json={"images": [data_url]}).json()["predictions"][0]["index"] == expected.labels[0]
    )


FUZZ = [
    ("truncated png", dict(files=[("files", ("t.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0", "image/png"))]), 400),
    ("20000x20000 png bomb", dict(files=[("files", ("bomb.png", png_bomb(), "image/png"))]), 400),
    ("0-byte file", dict(files=[("files", ("empty.png", b"", "image/png"))]), 400),
    ("not an image", dict(files=[("files", ("a.png", b"hello world", "image/png"))]), 400),
    ("wrong content type", dict(content=b"\x89PNG", headers={"content-type": "image/png"}), 415),
    ("no content type", dict(content=b"abc"), 415),
    ("body over the cap", dict(files=[("files", ("big.png", b"\0" * 300_000, "image/png"))]), 413),
    ("json not an object", dict(json=[1, 2, 3]), 400),
    ("json without images", dict(json={"pictures": []}), 400),
    ("json wrong shape", dict(json={"arrays": np.zeros((2, 27, 28), int).tolist()}), 400),
    ("json ragged", dict(json={"arrays": [[1, 2], [3]]}), 400),
    ("json strings", dict(json={"arrays": [["a"] * 28] * 28}), 400),
    ("json out of range", dict(json={"arrays": (np.ones((28, 28)) * 300).tolist()}), 400),
    # Issue 41, hostile input 6: each of these answered 500 with a traceback in the log.
    *((f"json arrays {v!r}", dict(json={"arrays": v}), 400) for v in (5, 0.5, "x", None, True, {})),
    ("json arrays of one number", dict(json={"arrays": [7]}), 400),
    ("json bad base64", dict(json={"images": ["%%%"]}), 400),
    ("json images not strings", dict(json={"images": [1]}), 400),
    ("json empty", dict(json={"images": []}), 400),
    ("invalid json", dict(content=b"{not json", headers={"content-type": "application/json"}), 400),
    ("too many images", dict(json={"arrays": np.zeros((9, 28, 28), int).tolist()}), 413),
    ("too many files", dict(files=[("files", (f"{i}.png", b"x", "image/png")) for i in range(9)]), 413),
    ("multipart without boundary", dict(content=b"--x--", headers={"content-type": "multipart/form-data"}), 400),
    ("form without files", dict(files={"note": (None, "hello")}), 400),
    ("url-encoded form", dict(data={"a": "b"}), 415),
]


@pytest.mark.parametrize("name, request_kw, status", FUZZ, ids=[f[0] for f in FUZZ])
def test_bad_requests_get_a_json_4xx_and_the_server_keeps_serving(served, name, request_kw, status):
    client = served[0]
    r = client.post("/v1/predict", **request_kw)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and r.json()["error"] and "Traceback" not in r.text
    assert client.get("/healthz").status_code == 200


def test_bad_query_and_unknown_paths(served):
    client = served[0]
    for url, status in [("/v1/predict?top_k=0", 422), ("/v1/predict?top_k=11", 422), ("/v1/predict?top_k=x", 422)]:
        r = client.post(url, json={"arrays": np.zeros((28, 28), int).tolist()})
        assert r.status_code == status and "error" in r.json()
    assert client.get("/nowhere").status_code == 404 and "error" in client.get("/nowhere").json()
    assert client.get("/static/../../etc/passwd").status_code == 404
    assert client.get("/v1/predict").status_code == 405


def test_a_failure_is_a_500_without_traceback_and_the_next_request_works(served, monkeypatch):
    client, committee, x = served
    batcher = client.app.state.batcher

    def broken(images):
        raise RuntimeError("secret internals /home/me")

    monkeypatch.setattr(batcher, "run_batch", broken)
    r = client.post("/v1/predict", json={"arrays": x[:1].tolist()})
    assert r.status_code == 500 and r.json() == {"error": "internal error (see the server's log)"}
    monkeypatch.setattr(batcher, "run_batch", committee.explain)
    assert client.post("/v1/predict", json={"arrays": x[:1].tolist()}).status_code == 200


def test_the_page_is_served_from_the_package(served):
    client = served[0]
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "http" not in page.text.split("<body>")[1]
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/v1/predict"]


def test_a_phone_jpeg_with_exif_orientation_6_is_read_upright(served):
    client, committee, x = served
    garment = np.kron(x[0], np.ones((4, 4), np.uint8))  # 112 x 112, as a photo would be larger than 28 x 28

    def jpeg(img: Image.Image, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=100, **kw)
        return buf.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    sideways = Image.fromarray(garment).transpose(Image.Transpose.ROTATE_90)
    upright = client.post("/v1/predict", files=[("files", ("up.jpg", jpeg(Image.fromarray(garment)), "image/jpeg"))])
    phone = client.post("/v1/predict", files=[("files", ("phone.jpg", jpeg(sideways, exif=exif), "image/jpeg"))])
    a, b = upright.json()["predictions"][0], phone.json()["predictions"][0]
    assert a["label"] == b["label"] and abs(a["probability"] - b["probability"]) < 0.02
    ignored = client.post("/v1/predict", files=[("files", ("side.jpg", jpeg(sideways), "image/jpeg"))])
    assert ignored.json()["predictions"][0]["top_k"] != a["top_k"]  # without the tag it is another picture
