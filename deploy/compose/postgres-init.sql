-- MLflow's tracking store lives beside the service's database on the same server.
CREATE DATABASE mlflow OWNER genai;
