"""The SageMaker client and deployer against botocore's Stubber (no AWS account is reachable)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.response import StreamingBody  # noqa: E402
from botocore.stub import Stubber  # noqa: E402

from genai_factory.config import SageMakerSettings  # noqa: E402
from genai_factory.exceptions import (  # noqa: E402
    ConfigurationError,
    ModelRequestRejected,
    RateLimited,
)
from genai_factory.vision.inference import SageMakerClassifier  # noqa: E402
from genai_factory.vision.sagemaker import (  # noqa: E402
    SageMakerDeployer,
    SageMakerRuntime,
    deployment_plan,
    invocation_body,
)

SETTINGS = SageMakerSettings(
    endpoint_name="pneumonia",
    region="eu-west-1",
    role_arn="arn:aws:iam::123456789012:role/sagemaker",
    image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/genai-factory:1",
    model_data_url="s3://bucket/model.tar.gz",
)


def _client(service: str) -> Any:
    return boto3.client(
        service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


def _body(payload: dict[str, Any]) -> StreamingBody:
    raw = json.dumps(payload).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def test_invoke_sends_the_container_contract_and_reads_the_answer() -> None:
    client = _client("sagemaker-runtime")
    answer = {
        "predictions": [{"label": "normal", "label_id": 0, "probability": 0.1, "confidence": 0.9}],
        "model_version": "3",
    }
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": _body(answer), "ContentType": "application/json"},
            {
                "EndpointName": "pneumonia",
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": invocation_body([b"png-bytes"]),
            },
        )
        result = SageMakerClassifier(SageMakerRuntime("pneumonia", client)).classify([b"png-bytes"])
        stub.assert_no_pending_responses()
    assert result["predictions"][0]["label"] == "normal" and result["model_version"] == "3"
    assert "disclaimer" in result and result["latency_ms"] >= 0
    assert json.loads(invocation_body([b"png-bytes"]))["instances"][0]["b64"] == "cG5nLWJ5dGVz"


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [("ThrottlingException", 400, RateLimited), ("ValidationException", 400, ModelRequestRejected)],
)
def test_endpoint_errors_are_translated(code: str, status: int, error: type[Exception]) -> None:
    client = _client("sagemaker-runtime")
    with Stubber(client) as stub:
        stub.add_client_error("invoke_endpoint", code, "nope", status)
        with pytest.raises(error):
            SageMakerRuntime("pneumonia", client).invoke([b"x"])


def test_deploy_creates_model_config_and_endpoint() -> None:
    client = _client("sagemaker")
    plan = deployment_plan(SETTINGS, stamp="20260101")
    with Stubber(client) as stub:
        stub.add_response(
            "create_model", {"ModelArn": "arn:aws:sagemaker:eu-west-1:1:model/m"}, plan[0]["params"]
        )
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/c"},
            plan[1]["params"],
        )
        stub.add_client_error(
            "describe_endpoint",
            "ValidationException",
            "Could not find endpoint",
            400,
            expected_params={"EndpointName": "pneumonia"},
        )
        stub.add_response(
            "create_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/pneumonia"},
            plan[2]["params"],
        )
        done = SageMakerDeployer(client).deploy(plan)
        stub.assert_no_pending_responses()
    assert done["operations"] == ["create_model", "create_endpoint_config", "create_endpoint"]
    assert plan[0]["params"]["ModelName"] == "pneumonia-20260101"


def test_an_existing_endpoint_is_updated() -> None:
    client = _client("sagemaker")
    plan = deployment_plan(SETTINGS, stamp="2")
    with Stubber(client) as stub:
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:eu-west-1:1:model/m"})
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": "arn:aws:sagemaker:eu-west-1:1:endpoint-config/c"},
        )
        stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "pneumonia",
                "EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/pneumonia",
                "EndpointStatus": "InService",
                "CreationTime": "2026-01-01T00:00:00Z",
                "LastModifiedTime": "2026-01-01T00:00:00Z",
            },
            {"EndpointName": "pneumonia"},
        )
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": "arn:aws:sagemaker:eu-west-1:1:endpoint/pneumonia"},
            plan[2]["params"],
        )
        done = SageMakerDeployer(client).deploy(plan)
    assert done["operations"][-1] == "update_endpoint"


def test_deployment_needs_its_settings() -> None:
    with pytest.raises(ConfigurationError, match="role_arn"):
        deployment_plan(SETTINGS.model_copy(update={"role_arn": None}))
