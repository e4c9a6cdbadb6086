output "artifact_bucket" {
  description = "S3 bucket of MLflow artefacts and the image model (MLflow --artifacts-destination s3://...)."
  value       = aws_s3_bucket.artifacts.id
}

output "database_endpoint" {
  description = "host:port of the PostgreSQL instance."
  value       = aws_db_instance.main.endpoint
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret holding the generated master password."
  value       = aws_db_instance.main.master_user_secret[0].secret_arn
}

output "service_secret_arn" {
  description = "Secret with the service's connection URLs (read by the External Secrets Operator)."
  value       = aws_secretsmanager_secret.service.arn
}

output "sagemaker_endpoint_name" {
  description = "SageMaker endpoint of the image model."
  value       = aws_sagemaker_endpoint.vision.name
}

output "ecr_repositories" {
  description = "Image repositories by name."
  value       = { for name, repo in aws_ecr_repository.images : name => repo.repository_url }
}

output "service_role_arn" {
  description = "IAM role of the serving pods (annotate the ServiceAccount: eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.service.arn
}

output "mlflow_role_arn" {
  description = "IAM role of the MLflow server's ServiceAccount."
  value       = aws_iam_role.mlflow.arn
}

output "ci_deploy_role_arn" {
  description = "Role GitHub Actions assumes through OIDC (vars.AWS_DEPLOY_ROLE_ARN)."
  value       = aws_iam_role.ci_deploy.arn
}
