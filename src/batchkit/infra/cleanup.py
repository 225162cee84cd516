"""The cleanup Lambdas and the custom resources that run them when the stack is deleted.

Each function's code is inlined (`Code.ZipFile`), so no bucket has to exist before the stack.
CloudFormation inlines one file (`index.py`) per function: `lambda_source` bundles the protocol
helper `cfn_response.py` ahead of the handler module and drops the handler's import of it.
"""

from __future__ import annotations

from importlib import resources as importlib_resources

from batchkit.infra.cfn import Json, get_att, ref, sub
from batchkit.infra.config import ClusterConfig
from batchkit.infra.naming import Names
from batchkit.infra.storage import log_group

BUNDLE_MARKER = "# bundled:"
INLINE_LIMIT = 32_768  # characters CloudFormation accepts in Code.ZipFile
CONDITION = "CleanupOnDeleteEnabled"

FUNCTIONS = {
    # logical id prefix: (module, purpose, custom resource properties)
    "EmptyEcr": ("empty_ecr", "empty-ecr", {"RepositoryName": ref("Repository")}),
    "EmptyS3": (
        "empty_s3",
        "empty-s3",
        {"BucketName": ref("Bucket"), "Prefix": sub("${ArtifactS3RootDirectory}/")},
    ),
}


def _read(module: str) -> str:
    return importlib_resources.files("batchkit.lambdas").joinpath(f"{module}.py").read_text("utf-8")


def lambda_source(module: str) -> str:
    """The self-contained `index.py` of one cleanup function."""
    handler = [line for line in _read(module).splitlines() if BUNDLE_MARKER not in line]
    source = _read("cfn_response") + "\n\n" + "\n".join(handler) + "\n"
    if len(source) > INLINE_LIMIT:
        raise ValueError(f"lambdas/{module}.py is too large to inline ({len(source)} characters)")
    return source


def resources(config: ClusterConfig) -> Json:
    names = Names.of(config)
    result: Json = {}
    for logical, (module, purpose, properties) in FUNCTIONS.items():
        function_name = names.lambda_function(purpose)
        group = log_group(f"/aws/lambda/{function_name}", config.log_retention_days)
        result[f"{logical}LogGroup"] = {"Condition": CONDITION, **group}
        result[f"{logical}Function"] = {
            "Type": "AWS::Lambda::Function",
            "Condition": CONDITION,
            "DependsOn": [f"{logical}LogGroup"],
            "Properties": {
                "FunctionName": function_name,
                "Description": f"batchkit cluster {names.cluster}: {purpose} on stack delete",
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Timeout": 900,
                "MemorySize": 256,
                "Role": get_att("CleanupRole", "Arn"),
                "Code": {"ZipFile": lambda_source(module)},
            },
        }
        # Deleted before the function, its log group and its role: those outlive the call.
        result[f"{logical}OnDelete"] = {
            "Type": f"Custom::{logical}",
            "Condition": CONDITION,
            "DependsOn": [f"{logical}LogGroup"],
            "Properties": {
                "ServiceToken": get_att(f"{logical}Function", "Arn"),
                **properties,
            },
        }
    return result
