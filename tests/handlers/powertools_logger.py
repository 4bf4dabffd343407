"""Logs through AWS Lambda Powertools' Logger, which reads the context's attributes by name."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="orders")


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    logger.info("processing order")
    return {"request": context.aws_request_id}
