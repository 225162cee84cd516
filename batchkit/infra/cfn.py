"""CloudFormation building blocks: intrinsic functions as dicts, and YAML emission.

Templates are plain dicts built by pure functions; they become text only here, at the edge.
Intrinsics use the long form (`{"Ref": ...}`), which every YAML tool reads without custom tags.
"""

from __future__ import annotations

from typing import Any

import yaml

Json = dict[str, Any]


def ref(name: str) -> Json:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> Json:
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str) -> Json:
    return {"Fn::Sub": text}


def if_(condition: str, then: Any, otherwise: Any) -> Json:
    return {"Fn::If": [condition, then, otherwise]}


NO_VALUE = ref("AWS::NoValue")
PARTITION_ARN = "arn:${AWS::Partition}"


def policy(*statements: Json) -> Json:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: list[str], resources: list[Any] | Any, **extra: Any) -> Json:
    statement: Json = {"Effect": "Allow", "Action": actions, "Resource": resources}
    statement.update(extra)
    return statement


class _Dumper(yaml.SafeDumper):
    """Block style, insertion order, `|` literals for multi-line strings (inline code), and no
    anchors: CloudFormation rejects YAML aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(template: Json) -> str:
    """Serialise a template dict as YAML, keys in the order they were built."""
    return yaml.dump(template, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
