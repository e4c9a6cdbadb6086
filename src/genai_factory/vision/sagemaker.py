"""SageMaker with boto3: call an endpoint that hosts the image model, and deploy one.

No AWS account is reachable from where this package is developed and tested: both parts are
tested with botocore's ``Stubber`` (the requests are checked against the service model, the
answers are canned), never against AWS. Credentials and region come from boto3's own chain
(environment, profile, instance role) and ``vision.sagemaker.region``.

* :class:`SageMakerRuntime` sends ``{"instances": [{"b64": ...}]}`` (``application/json``) to
  ``InvokeEndpoint``: the container contract of this package's ``POST /invocations``.
* :func:`deployment_plan` and :class:`SageMakerDeployer`: ``CreateModel`` (the container image and
  the model data in S3), ``CreateEndpointConfig``, then ``CreateEndpoint`` or, when the endpoint
  already exists, ``UpdateEndpoint``. ``vision deploy --dry-run`` prints the plan only.

botocore's errors are translated here, once: throttling → :class:`RateLimited`, a missing
endpoint or model → :class:`NotFoundError`, a refused request → :class:`ModelRequestRejected`,
connection problems and 5xx → :class:`ProviderUnavailable`.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from genai_factory.config import SageMakerSettings
from genai_factory.exceptions import (
    ConfigurationError,
    ModelRequestRejected,
    NotFoundError,
    ProviderUnavailable,
    RateLimited,
)

CONTENT_TYPE = "application/json"
_THROTTLED = ("ThrottlingException", "Throttling", "TooManyRequestsException")


def _client(service: str, settings: SageMakerSettings) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ConfigurationError(f"boto3 is not installed: {exc}") from exc
    config = Config(
        connect_timeout=settings.timeout_s,
        read_timeout=settings.timeout_s,
        retries={"max_attempts": 2},
    )
    return boto3.client(service, region_name=settings.region, config=config)


def translate(exc: Exception, what: str) -> Exception:
    """botocore's exception as the package's."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = f"{what}: {code}: {error.get('Message', '')}"
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _THROTTLED or status == 429:
            return RateLimited(message)
        if code in ("ValidationException", "ModelError") and "Could not find" in message:
            return NotFoundError(message)
        if status >= 500 or code in ("ServiceUnavailable", "InternalFailure"):
            return ProviderUnavailable(message)
        return ModelRequestRejected(message)
    if isinstance(exc, BotoCoreError):
        return ProviderUnavailable(f"{what}: {exc}")
    return exc


def invocation_body(images: list[bytes]) -> bytes:
    """The JSON body ``POST /invocations`` reads."""
    instances = [{"b64": base64.b64encode(image).decode("ascii")} for image in images]
    return json.dumps({"instances": instances}).encode("utf-8")


class SageMakerRuntime:
    """``InvokeEndpoint`` on one endpoint; ``client`` is a boto3 ``sagemaker-runtime`` client."""

    def __init__(self, endpoint_name: str, client: Any) -> None:
        self.endpoint_name = endpoint_name
        self.client = client

    @classmethod
    def from_settings(cls, settings: SageMakerSettings) -> SageMakerRuntime:
        if not settings.endpoint_name:
            raise ConfigurationError("vision.sagemaker.endpoint_name is not set")
        return cls(settings.endpoint_name, _client("sagemaker-runtime", settings))

    def invoke(self, images: list[bytes]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType=CONTENT_TYPE,
                Accept=CONTENT_TYPE,
                Body=invocation_body(images),
            )
            raw = answer["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"endpoint {self.endpoint_name}") from exc
        try:
            body: dict[str, Any] = json.loads(raw)
        except ValueError as exc:
            raise ProviderUnavailable(f"endpoint {self.endpoint_name}: answer is not JSON") from exc
        return body


def _require(settings: SageMakerSettings) -> dict[str, str]:
    needed = {
        "endpoint_name": settings.endpoint_name,
        "image_uri": settings.image_uri,
        "model_data_url": settings.model_data_url,
        "role_arn": settings.role_arn,
    }
    missing = [name for name, value in needed.items() if not value]
    if missing:
        names = ", ".join(f"vision.sagemaker.{m}" for m in missing)
        raise ConfigurationError(f"SageMaker deployment needs {names}")
    return {k: str(v) for k, v in needed.items()}


def deployment_plan(settings: SageMakerSettings, stamp: str | None = None) -> list[dict[str, Any]]:
    """The requests that deploy the model: ``[{"operation", "params"}...]`` (endpoint last)."""
    values = _require(settings)
    stamp = stamp or datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    model = f"{values['endpoint_name']}-{stamp}"
    return [
        {
            "operation": "create_model",
            "params": {
                "ModelName": model,
                "ExecutionRoleArn": values["role_arn"],
                "PrimaryContainer": {
                    "Image": values["image_uri"],
                    "ModelDataUrl": values["model_data_url"],
                    "Environment": {"GENAI_VISION__MODEL_DIR": "/opt/ml/model"},
                },
            },
        },
        {
            "operation": "create_endpoint_config",
            "params": {
                "EndpointConfigName": model,
                "ProductionVariants": [
                    {
                        "VariantName": "champion",
                        "ModelName": model,
                        "InitialInstanceCount": 1,
                        "InstanceType": settings.instance_type,
                    }
                ],
            },
        },
        {
            "operation": "create_endpoint",
            "params": {"EndpointName": values["endpoint_name"], "EndpointConfigName": model},
        },
    ]


class SageMakerDeployer:
    """Run a :func:`deployment_plan` with a boto3 ``sagemaker`` client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: SageMakerSettings) -> SageMakerDeployer:
        return cls(_client("sagemaker", settings))

    def _exists(self, endpoint: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.describe_endpoint(EndpointName=endpoint)
        except ClientError as exc:
            if "Could not find" in str(exc.response.get("Error", {}).get("Message", "")):
                return False
            raise translate(exc, f"describing {endpoint}") from exc
        return True

    def deploy(self, plan: list[dict[str, Any]]) -> dict[str, Any]:
        """Send the plan; an existing endpoint is updated to the new configuration."""
        from botocore.exceptions import BotoCoreError, ClientError

        done: list[str] = []
        for step in plan:
            operation, params = step["operation"], dict(step["params"])
            if operation == "create_endpoint" and self._exists(params["EndpointName"]):
                operation = "update_endpoint"
            try:
                getattr(self.client, operation)(**params)
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, operation) from exc
            done.append(operation)
        return {
            "dry_run": False,
            "operations": done,
            "endpoint": plan[-1]["params"]["EndpointName"],
        }
