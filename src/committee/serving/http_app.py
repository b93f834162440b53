"""The HTTP service: a trained committee behind FastAPI (``committee serve``).

    POST /v1/predict     images (multipart files, or JSON base64 / uint8 arrays) -> per image the
                         top-k, each member's vote, entropy, disagreement, mutual information, the
                         abstention and out-of-distribution flags, and the prediction set
    GET  /v1/model       classes, members, rule, input shape, test accuracy with its interval,
                         calibration, the thresholds in use, the limits
    GET  /v1/model/card  MODEL_CARD.md
    GET  /healthz        {"status": "ok"}
    GET  /               a page to drop pictures on (served from the package: no CDN, no build step)
    GET  /docs           the OpenAPI page FastAPI makes

Concurrent requests share forward passes (:mod:`committee.serving.batching`). Every refusal is a
4xx with ``{"error": "..."}``; an unexpected failure is a 500 with no traceback, and the server
keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from importlib import resources

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from committee.serving.answers import prediction_rows
from committee.serving.batching import MicroBatcher
from committee.serving.decoding import Decoder
from committee.serving.http_inputs import BadRequest, InputRules, pictures_from_json
from committee.serving.http_schema import CARD, PREDICT_BODY, PREDICTIONS
from committee.serving.trained import Committee

log = logging.getLogger("committee.serve")

WEB_FILES = {"app.js": "text/javascript", "style.css": "text/css"}


@dataclass(frozen=True)
class ServiceSettings:
    """What ``committee serve`` is told: thresholds, batching and the caps on a request."""

    alpha: float = 0.1  # prediction sets hold the true class with probability >= 1 - alpha
    set_method: str = "lac"
    coverage: float = 0.9  # abstain below the confidence that keeps this share of validation answered
    max_batch: int = 64
    max_wait_ms: float = 5.0
    max_body_bytes: int = 16 << 20
    max_request_images: int = 256
    timeout_s: float = 30.0  # per request: reading its body, decoding and answering
    max_decoded_bytes: int = 512 << 20  # decoded pictures in flight across requests


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is refused with 413 before it is all read."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await too_large(self.limit)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BadRequest(413, f"request body over {self.limit:,} bytes (--max-body-mb)")
            return message

        return await self.app(scope, counted, send)


def too_large(limit: int) -> JSONResponse:
    return JSONResponse({"error": f"request body over {limit:,} bytes (--max-body-mb)"}, status_code=413)


def model_document(committee: Committee, settings: ServiceSettings, gate, sets) -> dict:
    """``GET /v1/model``: what the committee is, how good it was on test, and the thresholds in use."""
    result = committee.run.read_metrics()
    entry = result.committees.get(committee.rule) if result else None
    scores = entry.scores() if entry else None
    return {
        "classes": committee.classes,
        "members": committee.members,
        "rule": committee.rule,
        "input_shape": list(committee.input_shape),
        "input": "uint8 pixels; Fashion-MNIST style (light garment on dark, 28x28)"
        if committee.run.config().fashion_mnist
        else f"the run's own pictures, made square by {committee.run.config().fit}",
        "accuracy": None
        if scores is None
        else {
            "split": result.main_split,
            "value": scores.accuracy,
            "ci95": list(scores.accuracy_ci),
            "n": result.n_test if result.has_test else result.n_val,
        },
        "calibration": None if scores is None else {"ece": scores.ece, "nll": scores.nll, "brier": scores.brier},
        "abstention": gate.to_dict(),
        "prediction_sets": sets.to_dict(),
        # The cascade rule: its stages (cheapest first), thresholds and where images left on validation/test.
        "cascade": entry.routing if entry is not None and entry.routing else None,
        "batching": {"max_batch": settings.max_batch, "max_wait_ms": settings.max_wait_ms},
        "limits": {
            "max_body_bytes": settings.max_body_bytes,
            "max_request_images": settings.max_request_images,
            "timeout_s": settings.timeout_s,
            "max_decoded_bytes": settings.max_decoded_bytes,
        },
    }


async def read_images(request: Request, rules: InputRules, decode) -> tuple[list[str], np.ndarray]:
    """(names, uint8 images ``(N, ...)``) from a multipart or JSON request; ``decode`` turns
    ``(name, bytes)`` pairs into images (:func:`committee.serving.decoding.decode_within_budget`)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            async with request.form(max_files=rules.max_images, max_part_size=rules.max_part_bytes) as form:
                uploads = [v for _, v in form.multi_items() if hasattr(v, "read")]
                files = [(upload.filename or "upload", await upload.read()) for upload in uploads]
        except BadRequest:
            raise
        except StarletteHTTPException as exc:  # Starlette's form limits and parse errors, as a 400
            too_many = "Too many files" in str(exc.detail)
            status, why = (
                (413, f"over {rules.max_images} images in one request (--max-request-images)")
                if too_many
                else (400, exc.detail)
            )
            raise BadRequest(status, f"unreadable multipart body: {why}") from None
        except Exception as exc:  # python-multipart's own errors
            raise BadRequest(400, f"unreadable multipart body ({exc})") from None
        if not files:
            raise BadRequest(400, "no image files in the form (send them as multipart files, e.g. field 'files')")
        return [name for name, _ in files], await decode(files)
    if kind == "application/json":
        try:
            doc = await request.json()
        except BadRequest:
            raise
        except Exception:
            raise BadRequest(400, "body is not valid JSON") from None
        names, pictures = await run_in_threadpool(pictures_from_json, doc, rules)
        if isinstance(pictures, np.ndarray):
            return names, pictures
        return names, await decode(list(zip(names, pictures)))
    raise BadRequest(415, f"content type {kind or 'missing'}: send multipart/form-data files or application/json")


def create_app(committee: Committee, settings: ServiceSettings | None = None) -> FastAPI:
    """The service for a loaded committee; thresholds are fitted on its validation split once, here."""
    settings = settings or ServiceSettings()
    gate = committee.abstention(coverage=settings.coverage)
    sets = committee.conformal(settings.alpha, settings.set_method)
    cfg = committee.run.config()
    rules = InputRules(
        committee.input_shape, cfg.fashion_mnist, cfg.fit, settings.max_request_images, settings.max_body_bytes
    )
    batcher = MicroBatcher(committee.explain, settings.max_batch, settings.max_wait_ms)
    card = committee.run.model_card()
    about = model_document(committee, settings, gate, sets)
    decode = Decoder(rules, settings.max_decoded_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        decode.start()
        await batcher.start()
        yield
        await batcher.stop()
        decode.stop()

    app = FastAPI(title="committee", summary="A trained committee of image classifiers", lifespan=lifespan)
    app.state.batcher, app.state.decoder = batcher, decode
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    add_error_handlers(app)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model() -> dict:
        return {**about, "batching": {**about["batching"], "batches": batcher.stats.batches}}

    @app.get("/v1/model/card", response_class=Response, responses=CARD)
    async def model_card() -> Response:
        if card is None:
            raise BadRequest(404, "this run has no MODEL_CARD.md yet (committee report writes it)")
        return Response(card, media_type="text/markdown; charset=utf-8")

    k = len(committee.classes)

    @app.post("/v1/predict", response_class=JSONResponse, responses=PREDICTIONS, openapi_extra=PREDICT_BODY)
    async def predict(
        request: Request, top_k: int = Query(3, ge=1, le=k, description=f"classes to list per image, 1..{k}")
    ) -> JSONResponse:
        """Pictures in, the committee's answers out (see the module docstring for the body's forms)."""
        try:  # the timeout covers the whole request: a slow body, waiting for the pixel budget, decoding
            async with asyncio.timeout(settings.timeout_s):
                names, images = await read_images(request, rules, decode)
                pred = await batcher.predict(images)
        except TimeoutError:
            raise BadRequest(503, f"no answer within {settings.timeout_s:g} s (--timeout); try again") from None
        # A JSONResponse as is: FastAPI's jsonable_encoder would walk every row again (a third of the time).
        return JSONResponse({"predictions": prediction_rows(pred, names, top_k, gate, sets)})

    add_page(app)
    return app


def add_page(app: FastAPI) -> None:
    """``GET /`` and its two files, read from the installed package."""
    web = resources.files("committee.serving") / "web"

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse((web / "index.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in WEB_FILES:
            raise BadRequest(404, "not found")
        return Response((web / name).read_bytes(), media_type=WEB_FILES[name])


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal as ``{"error": ...}`` with its 4xx; anything else a 500 without a traceback."""

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Its headers too: a 405 must say which methods the route allows (Allow, RFC 9110).
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}"}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s: %s: %s", request.url.path, type(exc).__name__, exc)
        return JSONResponse({"error": "internal error (see the server's log)"}, status_code=500)
