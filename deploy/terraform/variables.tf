variable "region" {
  description = "AWS region of every resource."
  type        = string
  default     = "eu-west-1"
  validation {
    condition     = can(regex("^[a-z]{2}-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like eu-west-1."
  }
}

variable "environment" {
  description = "Deployment stage; part of every name."
  type        = string
  default     = "prod"
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "vpc_id" {
  description = "VPC of the database and the SageMaker endpoint."
  type        = string
  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must be a VPC id (vpc-...)."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two, in different availability zones) for RDS and SageMaker."
  type        = list(string)
  validation {
    condition     = length(var.private_subnet_ids) >= 2 && alltrue([for id in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "private_subnet_ids needs at least two subnet ids (subnet-...)."
  }
}

variable "app_cidr_blocks" {
  description = "CIDR blocks of the Kubernetes nodes that may reach the database."
  type        = list(string)
  validation {
    condition     = length(var.app_cidr_blocks) > 0 && alltrue([for c in var.app_cidr_blocks : can(cidrnetmask(c))])
    error_message = "app_cidr_blocks must hold valid CIDR blocks."
  }
}

variable "db_instance_class" {
  description = "RDS instance class of the metadata database."
  type        = string
  default     = "db.t4g.medium"
  validation {
    condition     = startswith(var.db_instance_class, "db.")
    error_message = "db_instance_class must be an RDS class (db.*)."
  }
}

variable "db_allocated_storage_gb" {
  description = "Initial storage of the database in GB (it grows up to four times this)."
  type        = number
  default     = 50
  validation {
    condition     = var.db_allocated_storage_gb >= 20 && var.db_allocated_storage_gb <= 4096
    error_message = "db_allocated_storage_gb must be between 20 and 4096."
  }
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups."
  type        = number
  default     = 14
  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "artifact_noncurrent_days" {
  description = "Days an overwritten or deleted artefact version is kept before it expires."
  type        = number
  default     = 90
  validation {
    condition     = var.artifact_noncurrent_days >= 1
    error_message = "artifact_noncurrent_days must be at least 1."
  }
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose workflows may deploy (OIDC)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "create_github_oidc_provider" {
  description = "Create the GitHub OIDC provider (false when the account already has one)."
  type        = bool
  default     = true
}

variable "vision_model_image" {
  description = "Inference image of the image model (an ECR URI with a tag or digest)."
  type        = string
  validation {
    condition     = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com/.+[:@].+$", var.vision_model_image))
    error_message = "vision_model_image must be an ECR image URI with a tag or digest."
  }
}

variable "vision_model_data_key" {
  description = "Key of the image model's model.tar.gz in the artefact bucket."
  type        = string
  default     = "vision/champion/model.tar.gz"
}

variable "sagemaker_instance_type" {
  description = "Instance type of the SageMaker endpoint."
  type        = string
  default     = "ml.m5.large"
  validation {
    condition     = startswith(var.sagemaker_instance_type, "ml.")
    error_message = "sagemaker_instance_type must be a SageMaker type (ml.*)."
  }
}

variable "sagemaker_instance_count" {
  description = "Instances behind the endpoint (two or more for availability)."
  type        = number
  default     = 2
  validation {
    condition     = var.sagemaker_instance_count >= 1 && var.sagemaker_instance_count <= 10
    error_message = "sagemaker_instance_count must be between 1 and 10."
  }
}

variable "tags" {
  description = "Extra tags of every resource."
  type        = map(string)
  default     = {}
}

variable "eks_oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider (IAM roles for service accounts)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.eks_oidc_provider_arn))
    error_message = "eks_oidc_provider_arn must be an IAM OIDC provider ARN."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the service (deploy/k8s/overlays/prod)."
  type        = string
  default     = "genai-factory"
}
