"""Print the CloudFormation template that the SAM transform makes of a SAM template.

Usage: python scripts/sam_transform.py template.yaml > target/template.transformed.json

cfn-lint 1.58 validates a SAM template without running the SAM transform and
skips its circular-dependency check (E3004) for AWS::Serverless::* resources.
A cycle that only appears in the generated resources (for example a function
environment variable that references an HTTP API whose generated OpenAPI body
references the function) therefore passes `cfn-lint template.yaml` and fails
at deploy time. Linting this script's output catches it.

The transform runs offline: local CodeUri paths are replaced by a placeholder
S3 URI, as `sam package` would, and managed policies named without an ARN are
not resolved (this template names none). The region comes from AWS_REGION.
"""

import json
import sys

from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PLACEHOLDER_S3_PREFIX = "s3://placeholder-bucket/"


class OfflinePolicyLoader(ManagedPolicyLoader):
    """Managed policy loader that never calls IAM, so it resolves no policy name."""

    def __init__(self) -> None:
        super().__init__(iam_client=None)

    def load(self) -> dict:
        return {}


def replace_local_code_uris(template: dict) -> None:
    """Replace each local function CodeUri path with a placeholder S3 URI."""
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        code_uri = properties.get("CodeUri")
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(code_uri, str):
            if not code_uri.startswith("s3://"):
                properties["CodeUri"] = PLACEHOLDER_S3_PREFIX + code_uri


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python scripts/sam_transform.py TEMPLATE > OUTPUT.json", file=sys.stderr)
        return 2

    with open(sys.argv[1], encoding="utf-8") as template_file:
        template = yaml_parse(template_file.read())
    replace_local_code_uris(template)

    transformed = transform(template, {}, OfflinePolicyLoader())
    json.dump(transformed, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
