"""Fail when an IAM statement of the transformed template grants a wildcard.

Usage: python scripts/check_iam.py target/template.transformed.json

Reads the CloudFormation template that scripts/sam_transform.py prints, so the
statements SAM generates from each function's Policies are checked as deployed.
A statement fails when one of its actions is "*" or ends in ":*", or when its
resource is "*". AWS requires "*" as the resource of a few actions; such an
exception goes into RESOURCE_WILDCARD_ALLOWED with the reason, and there is none
today.
"""

import json
import sys

# Actions whose only valid resource is "*", each with the reason it is needed.
RESOURCE_WILDCARD_ALLOWED: dict[str, str] = {}


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements(template):
    """Yield (resource name, statement) for every inline IAM statement."""
    for name, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        documents = []
        if resource.get("Type") == "AWS::IAM::Role":
            documents = [policy.get("PolicyDocument", {}) for policy in properties.get("Policies", [])]
        elif resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [properties.get("PolicyDocument", {})]
        for document in documents:
            for statement in as_list(document.get("Statement", [])):
                yield name, statement


def problems(template):
    found = []
    checked = 0
    for name, statement in statements(template):
        if statement.get("Effect") != "Allow":
            continue
        checked += 1
        actions = [str(action) for action in as_list(statement.get("Action", []))]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                found.append(f"{name}: action {action} is a wildcard")
        for resource in as_list(statement.get("Resource", [])):
            if resource == "*" and not all(action in RESOURCE_WILDCARD_ALLOWED for action in actions):
                found.append(f"{name}: resource * for {', '.join(actions)}")
    return found, checked


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as file:
        template = json.load(file)
    found, checked = problems(template)
    for problem in found:
        print(problem, file=sys.stderr)
    if checked == 0:
        sys.exit("no IAM statement found: is this the transformed template?")
    if found:
        sys.exit(1)
    print(f"{checked} IAM statements checked: no wildcard action or resource")


if __name__ == "__main__":
    main()
