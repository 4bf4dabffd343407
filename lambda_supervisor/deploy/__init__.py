"""package, iam, deploy and remote-invoke: the AWS side of lambda-supervisor (needs boto3)."""
