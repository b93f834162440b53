"""What the service's OpenAPI schema says beyond FastAPI's defaults: the request bodies, every status code
with its JSON error model, and the content types, so that a client generated from ``/openapi.json``
(and Schemathesis, which tests the service against it) sees what the service really does.

Checked by ``tests/serving/test_http_contract.py``.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what was wrong, in one line"}},
}

WHY = {
    400: "the body or a parameter is not usable: not a picture, wrong shape, bad base64, no images",
    404: "nothing there",
    413: "over a cap: body bytes (--max-body-mb), images per request (--max-request-images), pixels",
    415: "the body is neither multipart/form-data nor application/json",
    422: "a parameter outside its documented range or type",
    503: "no answer within the service's --timeout; try again",
}


def error_responses(*codes: int) -> dict:
    """The ``responses`` entries of ``codes``, each ``{"error": ...}`` JSON."""
    return {
        code: {"description": WHY[code], "content": {"application/json": {"schema": ERROR_SCHEMA}}} for code in codes
    }


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "description": "Pictures (PNG, JPEG, ... or .npy) as multipart files, or JSON: base64 pictures or pixels",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            },
            "application/json": {
                "schema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["images"],
                            "properties": {"images": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
                        },
                        {
                            "type": "object",
                            "required": ["arrays"],
                            "properties": {
                                "arrays": {
                                    "type": "array",
                                    "minItems": 1,
                                    "description": "uint8 pixels (or numbers in [0, 1]): one image or a batch",
                                }
                            },
                        },
                    ]
                }
            },
        },
    }
}

PREDICTIONS = {
    200: {
        "description": "one answer per picture, in the order sent",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["predictions"],
                    "properties": {"predictions": {"type": "array", "items": {"type": "object"}}},
                }
            }
        },
    },
    **error_responses(400, 413, 415, 422, 503),
}

CARD = {
    200: {"description": "MODEL_CARD.md", "content": {"text/markdown": {"schema": {"type": "string"}}}},
    **error_responses(404),
}
