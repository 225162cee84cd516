"""Providers: the AWS one (boto3) and the embedded local engine, both speaking the Batch model."""
