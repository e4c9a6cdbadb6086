# The image model of the vision loop (genai-factory vision ...) served by SageMaker: the model's
# artefact in the artefact bucket, its inference image in ECR, inside the VPC, network-isolated.
resource "aws_security_group" "sagemaker" {
  #checkov:skip=CKV2_AWS_5:attached to the SageMaker model through vpc_config.security_group_ids
  name        = "${local.name}-sagemaker"
  description = "SageMaker endpoint of the image model: no inbound, HTTPS out in the VPC"
  vpc_id      = var.vpc_id
  egress {
    description = "HTTPS to VPC endpoints (S3, ECR, CloudWatch)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.app_cidr_blocks
  }
}

resource "aws_sagemaker_model" "vision" {
  name                     = "${local.name}-vision"
  execution_role_arn       = aws_iam_role.sagemaker.arn
  enable_network_isolation = true
  primary_container {
    image          = var.vision_model_image
    model_data_url = "s3://${aws_s3_bucket.artifacts.id}/${var.vision_model_data_key}"
    environment = {
      MLFLOW_DISABLE_TELEMETRY = "true"
    }
  }
  vpc_config {
    subnets            = var.private_subnet_ids
    security_group_ids = [aws_security_group.sagemaker.id]
  }
}

resource "aws_sagemaker_endpoint_configuration" "vision" {
  name_prefix = "${local.name}-vision-"
  kms_key_arn = aws_kms_key.main.arn
  production_variants {
    variant_name           = "champion"
    model_name             = aws_sagemaker_model.vision.name
    initial_instance_count = var.sagemaker_instance_count
    instance_type          = var.sagemaker_instance_type
  }
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_sagemaker_endpoint" "vision" {
  name                 = "${local.name}-vision"
  endpoint_config_name = aws_sagemaker_endpoint_configuration.vision.name
}
