"""``--format aliyun-cli``: the same output as a POSIX shell script of ``aliyun ecs`` and
``kubectl`` commands.

``aliyun ecs CreateSecurityGroup`` creates each group (its ``SecurityGroupId`` captured with
``jq``), ``AuthorizeSecurityGroup`` / ``AuthorizeSecurityGroupEgress`` add its rules with the
API's ``--Permissions.N.Field value`` arguments, 100 per call, then the label commands run and
the PodNetworkings are applied with the captured IDs in ``securityGroupIDs``. Quoting lives in
the small functions here (unit-tested), not in the template.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from npc.backends.render import environment

__all__ = ["heredoc", "render", "sh", "sh_comment"]

_ACTIONS = {"ingress": "AuthorizeSecurityGroup", "egress": "AuthorizeSecurityGroupEgress"}


def sh(value: object) -> str:
    """One shell word (single-quoted when it needs quoting)."""
    return shlex.quote(str(value))


def sh_comment(value: object) -> str:
    """Text for a ``#`` comment: one line."""
    return " ".join(str(value).split())


def heredoc(text: str) -> str:
    """Text for an unquoted here-document: ``\\``, ``$`` and backquotes escaped, so only the
    substitutions npc adds afterwards expand."""
    return text.replace("\\", "\\\\").replace("$", "\\$").replace("`", "\\`")


def render(data: dict[str, Any]) -> str:
    """The script for the document :func:`npc.backends.alibaba.backend.document` built."""
    groups = []
    variables: dict[str, str] = {}
    for number, group in enumerate(data["securityGroups"], 1):
        var = f"sg{number}"
        variables[group["name"]] = var
        calls = []
        for direction, batches in sorted(group["requests"].items(), reverse=True):
            for batch in batches:
                args = [
                    (f"Permissions.{i}.{key}", value)
                    for i, permission in enumerate(batch, 1)
                    for key, value in sorted(permission.items())
                ]
                calls.append({"action": _ACTIONS[direction], "args": args})
        groups.append(
            {"name": group["name"], "description": group["description"], "var": var, "calls": calls}
        )
    networkings = json.loads(json.dumps(data["podNetworkings"]))
    placeholders = {}
    for n, networking in enumerate(networkings):
        ids = networking["spec"]["securityGroupIDs"]
        for i, name in enumerate(ids):
            token = f"@@npc{n}_{i}@@"
            placeholders[token] = "${" + variables[name] + "}"
            ids[i] = token
    body = heredoc(
        json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": networkings}, indent=2, sort_keys=True
        )
    )
    for token, expansion in placeholders.items():
        body = body.replace(token, expansion)
    return (
        environment({"sh": sh, "sh_comment": sh_comment})
        .get_template("alibaba.sh.j2")
        .render(
            region=data["regionId"],
            notes=[],
            groups=groups,
            commands=data["attachment"]["commands"],
            networkings=body,
        )
    )
