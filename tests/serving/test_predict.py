import json

import numpy as np
import pytest
from PIL import Image

from committee.base.errors import CommitteeError
from committee.cli.commands import main
from committee.data.user_images import load_image, load_npy, to_fashion_mnist
from conftest import make_synthetic_run


def garment(h=40, w=20, light_background=True):
    """A dark rectangle on white (a product photo), or its inverse."""
    img = np.full((h, w), 255 if light_background else 0, np.uint8)
    img[5:-5, 3:-3] = 40 if light_background else 215
    return img


def test_light_background_is_inverted_and_fitted(tmp_path):
    Image.fromarray(garment()).convert("RGB").save(tmp_path / "a.jpg", quality=95)
    out = load_image(tmp_path / "a.jpg")
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out[0, 0] < 10 and out[14, 14] > 180  # garment light on dark
    cols = np.flatnonzero(out.max(axis=0) > 100)
    assert 5 <= cols.min() and cols.max() <= 22  # 40x20 -> 28x14, centred: aspect ratio kept
    assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 1


def test_dark_background_kept_and_forcing(tmp_path):
    Image.fromarray(garment(light_background=False)).save(tmp_path / "b.png")
    assert load_image(tmp_path / "b.png")[14, 14] > 180
    assert load_image(tmp_path / "b.png", invert="yes")[14, 14] < 80


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "1", "I;16"])
def test_modes(tmp_path, mode):
    img = Image.fromarray(garment()).convert("RGBA" if mode == "RGBA" else "L")
    if mode != "RGBA":
        img = img.convert(mode)
    path = tmp_path / f"x{mode.replace(';', '')}.png"
    img.save(path)
    out = load_image(path)
    assert out.shape == (28, 28) and out[14, 14] > 150


@pytest.mark.parametrize("content, message", [(b"", "empty file"), (b"just some text", "not an image")])
def test_bad_files(tmp_path, content, message):
    (tmp_path / "f.png").write_bytes(content)
    with pytest.raises(CommitteeError, match=message):
        load_image(tmp_path / "f.png")


def test_truncated_and_bomb(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(tmp_path / "n.png")
    data = (tmp_path / "n.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CommitteeError, match="truncated or corrupt"):
        load_image(tmp_path / "t.png")
    Image.new("1", (9000, 9000)).save(tmp_path / "bomb.png")  # 81 megapixels, a few KB on disk
    with pytest.raises(CommitteeError, match="too large"):
        load_image(tmp_path / "bomb.png")


def test_npy_inputs(tmp_path):
    np.save(tmp_path / "u8.npy", np.zeros((3, 28, 28), np.uint8))
    np.save(tmp_path / "f.npy", np.full((2, 28, 28), 0.5, np.float32))
    np.save(tmp_path / "bad.npy", np.zeros((2, 32, 32)))
    assert load_npy(tmp_path / "u8.npy").shape == (3, 28, 28)
    assert load_npy(tmp_path / "f.npy")[0, 0, 0] == 128
    with pytest.raises(CommitteeError, match=r"\(N, 28, 28\)"):
        load_npy(tmp_path / "bad.npy")


def test_to_fashion_mnist_square_is_identity_on_28x28():
    x = np.random.default_rng(1).integers(0, 100, (28, 28), dtype=np.uint8)
    x[0, :] = 0
    np.testing.assert_array_equal(to_fashion_mnist(x, "no"), x)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    return make_synthetic_run(tmp_path_factory.mktemp("predict"), "shallow,basic_cnn", epochs=3)


def test_predict_cli_json_and_errors(trained_run, tmp_path, capsys):
    run_dir, arrays = trained_run
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(arrays["test_images"][i]).save(folder / ("sub" if i % 2 else "") / f"{i}.png")
    (folder / "broken.png").write_bytes(b"nope")
    np.save(tmp_path / "arr.npy", arrays["test_images"][:4])
    capsys.readouterr()
    code = main(
        ["predict", "--run-dir", str(run_dir), str(folder), str(tmp_path / "arr.npy"), "--json", "--top-k", "2"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 1  # one file failed, the others were predicted
    assert len(doc["predictions"]) == 10 and [e["file"] for e in doc["errors"]] == [str(folder / "broken.png")]
    p = doc["predictions"][0]
    keys = "file label index probability top_k members member_probability entropy disagreement mutual_information"
    assert set(p) == {*keys.split(), "notes", "stages"}
    assert p["stages"] == list(p["members"])  # every member was asked (only the cascade asks fewer)
    assert len(p["top_k"]) == 2 and set(p["members"]) == {"shallow", "basic_cnn"}
    assert p["top_k"][0]["probability"] >= p["top_k"][1]["probability"]
    # the .npy rows are the raw test images: the committee mostly gets them right
    npy_preds = [q for q in doc["predictions"] if "arr.npy[" in q["file"]]
    assert sum(q["index"] == int(arrays["test_labels"][i]) for i, q in enumerate(npy_preds)) >= 2


def test_predict_unknown_rule(trained_run, capsys):
    assert main(["predict", "--run-dir", str(trained_run[0]), "x.png", "--rule", "median"]) == 2


def test_predict_text_output_never_forges_a_line_or_an_escape(trained_run, tmp_path, capsys):
    """Issue 41, hostile input 16: a newline in a file name forged a result line; ANSI escapes reached the terminal."""
    run_dir, arrays = trained_run
    forged = tmp_path / "a.png\nshirt.png: Trouser 99.9%"
    painted = tmp_path / "\x1b[2J\x1b[31mred.png"
    for path in (forged, painted):
        Image.fromarray(arrays["test_images"][0]).save(path, format="PNG")
    capsys.readouterr()
    assert main(["predict", "--run-dir", str(run_dir), str(forged), str(painted)]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 2  # one line per picture, whatever its name
    assert "\x1b" not in out and "\\n" in out and "\\x1b" in out


def test_predict_on_a_folder_names_what_it_cannot_read(trained_run, tmp_path, capsys):
    """Issue 41, hostile input 17: a FIFO, a broken link and a link to /dev/zero were skipped without a word."""
    import os

    run_dir, arrays = trained_run
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(arrays["test_images"][0]).save(folder / "good.png")
    os.mkfifo(folder / "fifo.png")
    (folder / "broken.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    capsys.readouterr()
    assert main(["predict", "--run-dir", str(run_dir), str(folder)]) == 1  # one read, three refused
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and "good.png" in captured.out
    for name in ("fifo.png", "broken.png", "zero.png"):
        assert f"{name}:" in captured.err, name
