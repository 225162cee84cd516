"""How a cluster's template reaches CloudFormation: inline when it fits, else from the bucket.

CloudFormation takes at most 51,200 bytes of template inline (`TemplateBody`) and 1 MB from S3
(`TemplateURL`) (CloudFormation API Reference, CreateStack and CreateChangeSet). A cluster's
template outgrows the first with its Lambda code and the default image's build context, and
nothing of the cluster exists before its stack. So a create whose template does not fit inline
goes in two steps: the stack is created with the cluster's bucket alone (`bootstrap_body`: the
same parameters, the bucket and its policy as the full template renders them), the full template
is put under `<root>/templates/` in that bucket, and the stack is updated to it with a change
set. Updates of such a cluster read their template from the bucket the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from batchkit.errors import ConflictError
from batchkit.infra.config import ClusterConfig
from batchkit.infra.template import render_template
from batchkit.providers.aws.s3 import S3ObjectStore
from batchkit.providers.aws.session import Api

TEMPLATE_BODY_LIMIT = 51_200  # bytes CloudFormation accepts inline (TemplateBody)
TEMPLATE_URL_LIMIT = 1_048_576  # bytes of a template CloudFormation reads from S3 (TemplateURL)
BOOTSTRAP_RESOURCES = ("Bucket", "BucketPolicy")


def _compact(template: Mapping[str, object]) -> str:
    return json.dumps(template, separators=(",", ":"))


def template_body(config: ClusterConfig) -> str:
    """The template as compact JSON (the fewest bytes CloudFormation reads)."""
    body = _compact(render_template(config))
    if len(body.encode()) > TEMPLATE_URL_LIMIT:
        raise ConflictError(
            f"the template of cluster {config.name!r} is {len(body.encode())} bytes, more than "
            f"the {TEMPLATE_URL_LIMIT} CloudFormation reads from S3",
            hint="use fewer queues or environments",
        )
    return body


def fits_inline(body: str) -> bool:
    return len(body.encode()) <= TEMPLATE_BODY_LIMIT


def bootstrap_body(config: ClusterConfig) -> str:
    """The first step of a create whose template does not fit inline: the cluster's bucket."""
    template = render_template(config)
    resources = template["Resources"]
    template["Resources"] = {logical: resources[logical] for logical in BOOTSTRAP_RESOURCES}
    template["Outputs"] = {}
    return _compact(template)


def upload_template(s3: Api, region: str, bucket: str, root: str, body: str) -> str:
    """Put the template under `<root>/templates/` in the cluster's bucket, named by its content;
    its https URL."""
    key = f"{root.strip('/')}/templates/{hashlib.sha256(body.encode()).hexdigest()[:16]}.json"
    S3ObjectStore(s3, bucket).put(key, body.encode())
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"
