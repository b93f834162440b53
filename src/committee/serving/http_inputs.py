"""Turn an HTTP request's body into a run's input images, or say in one line what is wrong with it.

Three forms, one per content type:

- ``multipart/form-data``: one or more image files (any field name; ``files`` by convention);
- ``application/json`` ``{"images": ["<base64 PNG/JPEG...>", ...]}``: encoded pictures;
- ``application/json`` ``{"arrays": [[[0, 12, ...], ...]]}``: uint8 (or [0, 1] float) arrays of the
  run's input shape, one image ``(S, S)`` or a batch ``(N, S, S)`` (``(N, 3, S, S)`` in colour).

Pictures are decoded as ``committee predict`` decodes files (EXIF orientation, the run's fit), under
the process's ``--max-pixels`` cap; PIL only reads a header before refusing a bomb.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

import numpy as np

from committee.base.errors import CommitteeError
from committee.data.user_images import as_uint8_images, decode_image


class BadRequest(Exception):
    """A request the service refuses: its HTTP status and the one-line reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class InputRules:
    """How a run's pictures become inputs, and the per-request caps."""

    input_shape: tuple[int, int, int]
    fashion_mnist: bool  # Fashion-MNIST style (fitted, inverted) rather than the run's own conversion
    fit: str  # pad or squash
    max_images: int  # images per request
    max_part_bytes: int  # bytes per uploaded file


def decode_picture(data: bytes, name: str, rules: InputRules) -> np.ndarray:
    """One encoded picture as uint8 of the run's input shape (no batch axis)."""
    if not data:
        raise BadRequest(400, f"{name}: empty file")
    shape = None if rules.fashion_mnist else rules.input_shape
    try:
        return decode_image(io.BytesIO(data), "auto", shape, rules.fit)
    except CommitteeError as exc:
        raise BadRequest(400, f"{name}: {exc}") from None


def pictures_from_json(doc: object, rules: InputRules) -> tuple[list[str], np.ndarray | list[bytes]]:
    """(names, uint8 images) from ``{"arrays": [...]}``, or (names, encoded pictures still to decode)
    from ``{"images": [base64, ...]}``: decoding is the caller's, under the service's pixel budget."""
    if not isinstance(doc, dict) or not ({"images", "arrays"} & set(doc)):
        raise BadRequest(400, 'JSON body must be an object with "images" (base64 pictures) or "arrays" (uint8 pixels)')
    if "images" in doc:
        encoded = doc["images"]
        if not isinstance(encoded, list) or not all(isinstance(e, str) for e in encoded):
            raise BadRequest(400, '"images" must be a list of base64 strings')
        check_count(len(encoded), rules)
        pictures = []
        for i, text in enumerate(encoded):
            try:
                data = base64.b64decode(text.split(",", 1)[-1] if text.startswith("data:") else text, validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest(400, f"images[{i}]: not valid base64") from None
            pictures.append(data)
        return [f"images[{i}]" for i in range(len(pictures))], pictures
    if not isinstance(doc["arrays"], list):
        raise BadRequest(400, '"arrays" must be a list of images (nested lists of pixel numbers)')
    try:
        arr = np.asarray(doc["arrays"])
    except (ValueError, TypeError):
        raise BadRequest(400, '"arrays" must be a rectangular nested list of numbers') from None
    try:
        images = as_uint8_images(arr, rules.input_shape)
    except CommitteeError as exc:
        raise BadRequest(400, f"arrays: {exc}") from None
    check_count(len(images), rules)
    return [f"arrays[{i}]" for i in range(len(images))], images


def check_count(n: int, rules: InputRules) -> None:
    if n == 0:
        raise BadRequest(400, "no images in the request")
    if n > rules.max_images:
        raise BadRequest(413, f"{n} images in one request, over the cap of {rules.max_images} (--max-request-images)")
