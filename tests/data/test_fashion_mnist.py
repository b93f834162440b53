import gzip
import http.server
import threading

import numpy as np
import pytest

from committee.base.errors import CommitteeError
from committee.data import fashion_mnist as data
from committee.data.splits import make_splits
from conftest import idx_bytes, requires_real_data, synthetic_arrays, write_dataset


def test_parse_valid_idx_roundtrip():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = data.parse_idx(idx_bytes(arr), "x", 3)
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "trailing"),
        (lambda b: b"\x01" + b[1:], "magic"),
        (lambda b: b[:2] + b"\x0d" + b[3:], "data type"),
        (lambda b: b[:3] + b"\x02" + b[4:], "dimension"),
        (lambda b: b[:6], "truncated header"),
        (lambda b: b[:2], "too short"),
    ],
)
def test_parse_rejects_corrupt_idx(mutate, message):
    good = idx_bytes(np.zeros((5, 28, 28), np.uint8))
    with pytest.raises(CommitteeError, match=message):
        data.parse_idx(mutate(good), "bad-file", 3)


def test_read_bytes_gzip_and_raw(tmp_path):
    raw = idx_bytes(np.ones((3, 2, 2), np.uint8))
    (tmp_path / "a.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "b").write_bytes(raw)
    assert data.read_bytes(tmp_path / "a.gz") == raw == data.read_bytes(tmp_path / "b")


def test_read_bytes_rejects_corrupt_and_truncated_gzip(tmp_path):
    payload = gzip.compress(idx_bytes(np.ones((50, 28, 28), np.uint8)))
    (tmp_path / "trunc.gz").write_bytes(payload[: len(payload) // 2])
    (tmp_path / "corrupt.gz").write_bytes(payload[:12] + b"\xff" * 20 + payload[32:])
    with pytest.raises(CommitteeError, match="trunc.gz: truncated gzip"):
        data.read_bytes(tmp_path / "trunc.gz")
    with pytest.raises(CommitteeError, match="corrupt.gz"):
        data.read_bytes(tmp_path / "corrupt.gz")


def test_gzip_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_DECOMPRESSED_BYTES", 10_000)
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(b"\x00" * 1_000_000))
    with pytest.raises(CommitteeError, match="decompresses to more than"):
        data.read_bytes(tmp_path / "bomb.gz")


def test_load_synthetic_gz_and_raw(synthetic_dir, isolated_env):
    ds = data.load_dataset(synthetic_dir)
    assert ds.images.dtype.is_floating_point is False and tuple(ds.images.shape) == (400, 28, 28)
    assert ds.n_train_official == 300 and ds.verified
    raw_dir = isolated_env / "raw"
    write_dataset(raw_dir, synthetic_arrays(), gz=False)
    assert data.load_dataset(raw_dir).images.equal(ds.images)


def test_checksum_mismatch_and_no_verify(isolated_env):
    d = isolated_env / "other"
    write_dataset(d, synthetic_arrays())  # not Fashion-MNIST: the official checksums fail
    with pytest.raises(CommitteeError, match="SHA-256.*--no-verify"):
        data.load_dataset(d)
    assert not data.load_dataset(d, verify=False).verified


def test_count_mismatch_and_label_range(isolated_env):
    arrays = synthetic_arrays()
    arrays["train_labels"] = arrays["train_labels"][:-1]
    write_dataset(isolated_env / "a", arrays)
    with pytest.raises(CommitteeError, match="299 labels for 300 images"):
        data.load_dataset(isolated_env / "a", verify=False)
    arrays = synthetic_arrays()
    arrays["test_labels"][0] = 12
    write_dataset(isolated_env / "b", arrays)
    with pytest.raises(CommitteeError, match="label 12 out of range"):
        data.load_dataset(isolated_env / "b", verify=False)


def test_search_order_env_then_cache(isolated_env, monkeypatch):
    env_dir, cache = isolated_env / "env", data.cache_dir()
    write_dataset(cache, synthetic_arrays(seed=1))
    assert data.load_dataset(verify=False).source == str(cache)
    write_dataset(env_dir, synthetic_arrays(seed=2))
    monkeypatch.setenv("COMMITTEE_DATA_DIR", str(env_dir))
    assert data.load_dataset(verify=False).source == str(env_dir)


def test_missing_files_in_data_dir_named(isolated_env):
    d = isolated_env / "partial"
    write_dataset(d, synthetic_arrays())
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(CommitteeError, match="missing t10k-labels-idx1-ubyte"):
        data.load_dataset(d)


def test_offline_error_says_how_to_get_the_data(isolated_env):
    with pytest.raises(CommitteeError, match="apt-get install dataset-fashion-mnist"):
        data.load_dataset()


class _Server:
    """A local HTTP server serving a directory, on a free loopback port."""

    def __init__(self, directory):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory), **k)  # noqa: E731
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_download_from_local_server(isolated_env, monkeypatch):
    served = isolated_env / "served"
    shas = write_dataset(served, synthetic_arrays())
    monkeypatch.setattr(data, "FILES", {k: (stem, shas[k]) for k, (stem, _) in data.FILES.items()})
    server = _Server(served)
    try:
        monkeypatch.setenv("COMMITTEE_DOWNLOAD_URL", server.url)
        ds = data.load_dataset()
    finally:
        server.close()
    assert ds.downloaded and ds.source == str(data.cache_dir())
    assert sorted(p.name for p in data.cache_dir().iterdir()) == sorted(stem + ".gz" for stem, _ in data.FILES.values())
    assert data.load_dataset(allow_download=False).images.equal(ds.images)  # now found in the cache


def test_download_with_bad_checksum_fails_and_writes_nothing(isolated_env, monkeypatch):
    served = isolated_env / "served"
    write_dataset(served, synthetic_arrays())  # official checksums: these files do not match
    server = _Server(served)
    try:
        monkeypatch.setenv("COMMITTEE_DOWNLOAD_URL", server.url)
        with pytest.raises(CommitteeError, match="checksum mismatch"):
            data.load_dataset()
    finally:
        server.close()
    assert not data.cache_dir().exists() or not any(data.cache_dir().iterdir())


def test_splits_disjoint_stratified_deterministic(synthetic_dir):
    ds = data.load_dataset(synthetic_dir)
    for kind in ("official", "seed"):
        s1, s2 = make_splits(ds, kind, seed=3), make_splits(ds, kind, seed=3)
        all_idx = np.concatenate([s1.train, s1.val, s1.test])
        assert len(np.unique(all_idx)) == len(all_idx) == len(ds.labels)
        for (_, a), (_, b) in zip(s1.items(), s2.items()):
            np.testing.assert_array_equal(a, b)
        assert not np.array_equal(make_splits(ds, kind, seed=4).val, s1.val)
        counts = np.bincount(ds.labels.numpy()[s1.val], minlength=10)
        assert counts.max() - counts.min() <= 1
    off = make_splits(ds, "official")
    assert len(off.val) == 30 and (off.test >= 300).all()
    assert len(make_splits(ds, "official", limit_train=17).train) == 17


@requires_real_data
def test_real_data_splits():
    ds = data.load_dataset(data.SYSTEM_DIR)
    labels = ds.labels.numpy()
    off = make_splits(ds, "official")
    assert (len(off.train), len(off.val), len(off.test)) == (54_000, 6_000, 10_000)
    assert (np.bincount(labels[off.val]) == 600).all()
    seed = make_splits(ds, "seed")
    assert (len(seed.train), len(seed.val), len(seed.test)) == (60_200, 7_000, 2_800)
    assert (np.bincount(labels[seed.test]) == 280).all() and (np.bincount(labels[seed.val]) == 700).all()
