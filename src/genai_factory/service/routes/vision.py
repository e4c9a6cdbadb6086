"""The image model's routes: ``POST /v1/vision/predict`` and the SageMaker container contract.

``POST /v1/vision/predict`` takes either ``multipart/form-data`` with one or more files in the
field ``images`` (or ``image``), or JSON ``{"images": ["<base64>", ...]}`` (each item may also be
``{"b64": "<base64>"}``); up to ``vision.max_batch`` images of at most ``vision.max_image_bytes``
each. The SageMaker contract: ``GET /ping`` answers 200 once the model is loaded (it loads it) and
``POST /invocations`` takes ``{"instances": [{"b64": ...}]}`` or one raw image body (``image/png``,
``image/jpeg``, ``application/dicom``). The model is a demonstration, not a diagnostic device.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from genai_factory.config import Settings
from genai_factory.exceptions import DocumentTooLarge, InvalidRequestError, ServiceNotReady

router = APIRouter(tags=["vision"])

DISCLAIMER_TEXT = (
    "The bundled model is a demonstration trained on a public research data set (PneumoniaMNIST), "
    "not a medical device and not for diagnostic use."
)
_RAW_TYPES = ("image/png", "image/jpeg", "application/dicom", "application/octet-stream")


class VisionPrediction(BaseModel):
    label: str = Field(description="Predicted label name, e.g. 'normal' or 'pneumonia'.")
    label_id: int = Field(description="Index of the label (1 = the positive class).")
    probability: float = Field(description="Calibrated probability of the positive class.")
    confidence: float = Field(description="Probability of the predicted label.")


class VisionResponse(BaseModel):
    __doc__ = f"One prediction per image, in order. {DISCLAIMER_TEXT}"

    predictions: list[VisionPrediction]
    model_version: str = Field(description="Registry version, 'bundled' or 'local'.")
    latency_ms: float = Field(description="Decode and inference time of the batch.")
    disclaimer: str = Field(description=DISCLAIMER_TEXT)


def _settings(request: Request) -> Settings:
    parts = getattr(request.app.state, "components", None)
    if parts is None:
        raise ServiceNotReady("the service is starting")
    settings: Settings = parts.settings
    return settings


def _service(request: Request) -> Any:
    found = getattr(request.app.state, "vision", None)
    if found is None:
        from genai_factory.vision.service import VisionService

        metrics = getattr(request.app.state, "metrics", None)
        found = VisionService(_settings(request), None if metrics is None else metrics.registry)
        request.app.state.vision = found
    return found


def _b64(item: Any) -> bytes:
    text = item.get("b64") if isinstance(item, dict) else item
    if not isinstance(text, str):
        raise InvalidRequestError("each image must be a base64 string or {'b64': string}")
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError(f"invalid base64 image: {exc}") from exc


async def _json_images(request: Request, key: str) -> list[bytes]:
    try:
        payload = await request.json()
    except ValueError as exc:
        raise InvalidRequestError("the body is not JSON") from exc
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise InvalidRequestError(f"expected a JSON object with a list {key!r}")
    return [_b64(item) for item in items]


async def _form_images(request: Request) -> list[bytes]:
    form = await request.form()
    files = [
        f for f in (*form.getlist("images"), *form.getlist("image")) if isinstance(f, UploadFile)
    ]
    return [await f.read() for f in files]


def _check(images: list[bytes], settings: Settings) -> None:
    if not images:
        raise InvalidRequestError("no image in the request")
    if len(images) > settings.vision.max_batch:
        raise InvalidRequestError(f"at most {settings.vision.max_batch} images per request")
    limit = settings.vision.max_image_bytes
    if any(len(image) > limit for image in images):
        raise DocumentTooLarge(f"an image is larger than {limit} bytes")


async def _predict(
    request: Request, images: list[bytes], endpoint: str, background: BackgroundTasks
) -> dict[str, Any]:
    service = _service(request)
    _check(images, service.settings)
    body: dict[str, Any]
    body, record = await service.predict(images, endpoint)
    if record is not None:
        background.add_task(record)
    return body


@router.post("/v1/vision/predict", response_model=VisionResponse)
async def predict(request: Request, background: BackgroundTasks) -> dict[str, Any]:
    """Classify one or more images (multipart field ``images``, or JSON ``{"images": [base64]}``).

    The bundled model is a demonstration trained on a public research data set, not a medical
    device and not for diagnostic use.
    """
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        images = await _form_images(request)
    else:
        images = await _json_images(request, "images")
    return await _predict(request, images, "predict", background)


@router.get("/ping")
async def ping(request: Request) -> dict[str, str]:
    """SageMaker health check: 200 once the image model is loaded."""
    classifier = await _service(request).classifier()
    return {"status": "ok", "model_version": classifier.version}


@router.post("/invocations", response_model=VisionResponse)
async def invocations(request: Request, background: BackgroundTasks) -> dict[str, Any]:
    """SageMaker inference: ``{"instances": [{"b64": ...}]}`` or one raw image body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind in _RAW_TYPES:
        images = [await request.body()]
    else:
        images = await _json_images(request, "instances")
    return await _predict(request, images, "invocations", background)
