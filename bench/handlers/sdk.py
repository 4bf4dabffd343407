"""A function whose init is what most Python functions' is: the AWS SDK and a client.

Module-level code runs once per environment; the handler itself does nothing.
"""

import boto3

s3 = boto3.client("s3", region_name="us-east-1")


def handler(event, context):
    return None
