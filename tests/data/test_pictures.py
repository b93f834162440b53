"""Pictures as people take them: EXIF orientation honoured, non-square pictures padded (or squashed)."""

import io

import numpy as np
import pytest
from PIL import Image

from committee.data.pictures import convert
from committee.data.user_images import decode_image, load_image


def arrow(h=60, w=30):
    """A tall dark picture with a bright bar at the top: which way is up is plain to see."""
    img = np.zeros((h, w), np.uint8)
    img[2:12, 5:-5] = 255
    return img


def phone_jpeg(path, upright: np.ndarray):
    """Store the picture the way a phone does: pixels rotated sideways, EXIF orientation 6 to undo it."""
    sideways = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to display
    sideways.save(path, "JPEG", quality=95, exif=exif)


@pytest.mark.parametrize("shape", [None, (1, 28, 28), (3, 32, 32)])
def test_exif_orientation_6_is_read_upright(tmp_path, shape):
    phone_jpeg(tmp_path / "phone.jpg", arrow())
    Image.fromarray(arrow()).save(tmp_path / "plain.png")
    phone = load_image(tmp_path / "phone.jpg", "no", shape)
    plain = load_image(tmp_path / "plain.png", "no", shape)
    assert phone.shape == plain.shape
    assert np.abs(phone.astype(int) - plain.astype(int)).mean() < 8  # JPEG noise only
    rows = np.flatnonzero((phone if phone.ndim == 2 else phone[0]).max(axis=1) > 128)
    assert rows.max() < phone.shape[-1] // 2  # the bar is at the top, where it belongs


def test_pad_keeps_proportions_and_squash_stretches():
    tall = Image.fromarray(np.full((60, 20), 200, np.uint8))  # a uniform 3:1 grey strip on no background
    tall_on_white = np.full((60, 30), 255, np.uint8)
    tall_on_white[:, 10:20] = 0  # a dark bar in the middle of a white picture
    padded = convert(Image.fromarray(tall_on_white), 30, rgb=False, fit="pad")
    squashed = convert(Image.fromarray(tall_on_white), 30, rgb=False, fit="squash")
    assert padded.shape == squashed.shape == (30, 30)
    assert padded[:, :7].min() == 255 and padded[:, -7:].min() == 255  # padded with the border's white
    dark_cols = lambda a: int((a.mean(axis=0) < 128).sum())  # noqa: E731
    assert dark_cols(padded) == 5 and dark_cols(squashed) == 10  # the bar keeps its width only when padded
    assert convert(tall, 28, rgb=True, fit="pad").shape == (3, 28, 28)


def test_decode_from_bytes_and_bad_bytes():
    buf = io.BytesIO()
    Image.fromarray(arrow()).save(buf, "PNG")
    assert decode_image(io.BytesIO(buf.getvalue())).shape == (28, 28)
    from committee.base.errors import CommitteeError

    with pytest.raises(CommitteeError, match="truncated or corrupt"):
        decode_image(io.BytesIO(buf.getvalue()[:60]))


def test_runs_made_before_the_option_keep_squashing():
    from committee.config.run_config import RunConfig

    d = RunConfig().to_dict()
    assert d["fit"] == "pad"
    del d["fit"]
    assert RunConfig.from_dict(d).fit == "squash"
    assert RunConfig.from_dict(d).data_spec().fit == "squash"


def test_a_large_transparent_png_costs_its_decoded_pixels_about_once():
    """Issue 41, hostile input 8: an RGBA picture was copied four times over at full size (RGBA,
    background, blend, gray); now it is box-reduced first. Peak memory measured in a fresh process."""
    import subprocess
    import sys

    script = (
        "import io, resource, numpy as np\n"
        "from PIL import Image\n"
        "from committee.data.user_images import decode_image\n"
        "a = np.zeros((4000, 4000, 4), np.uint8); a[..., 3] = 255; a[1000:2000, 1000:2000, :3] = 200\n"
        "buf = io.BytesIO(); Image.fromarray(a, 'RGBA').save(buf, format='PNG', compress_level=1); del a\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "out = decode_image(io.BytesIO(buf.getvalue()))\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024, out.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    decoded = 4000 * 4000 * 4
    assert out[1:] == ["(28,", "28)"]
    assert int(out[0]) < 3.2 * decoded  # before: 4.2x; now about 2.2x


def test_a_reduced_picture_keeps_its_garment_where_it_was():
    big = np.zeros((3000, 6000), np.uint8)
    big[1000:2000, 3000:4500] = 255
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "PNG")
    small = io.BytesIO()
    Image.fromarray(big[::5, ::5]).save(small, "PNG")
    a, b = decode_image(io.BytesIO(buf.getvalue())), decode_image(io.BytesIO(small.getvalue()))
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 3  # the same picture at two sizes, one answer


def test_float_pictures_with_nan_or_infinite_pixels_are_refused():
    from committee.base.errors import CommitteeError

    for bad in (np.nan, np.inf):
        pixels = np.zeros((30, 30), np.float32)
        pixels[4, 4] = bad
        buf = io.BytesIO()
        Image.fromarray(pixels, mode="F").save(buf, "TIFF")
        for shape in (None, (1, 28, 28)):
            with pytest.raises(CommitteeError, match="NaN or infinite"):
                decode_image(io.BytesIO(buf.getvalue()), "auto", shape)
    fine = io.BytesIO()
    Image.fromarray(np.full((30, 30), 0.5, np.float32), mode="F").save(fine, "TIFF")
    assert decode_image(io.BytesIO(fine.getvalue())).shape == (28, 28)
