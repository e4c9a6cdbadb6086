# The service's connection strings (database_url, redis_url), read by the External Secrets
# Operator into the Kubernetes Secret `genai-factory` (deploy/k8s/base/externalsecret.yaml).
# The value is set by the operator once the database exists (docs/deploy.md#terraform); the RDS
# master password itself is generated, stored and rotated by RDS (manage_master_user_password).
resource "aws_secretsmanager_secret" "service" {
  #checkov:skip=CKV2_AWS_57:holds connection URLs assembled from the RDS-managed (rotated) password and Redis; rotated by redeploying, no Lambda rotator fits a composite value
  name                    = "genai-factory/service"
  description             = "GenAI Factory connection URLs (database_url, redis_url)"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 30
}
