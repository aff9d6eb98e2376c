"""The quoting functions of the ``aliyun-cli`` format, and selectors as PodNetworkings
write them."""

from __future__ import annotations

import subprocess

import pytest

from npc import ir
from npc.backends.alibaba.attach import selector_object
from npc.backends.alibaba.cli import heredoc, sh, sh_comment


@pytest.mark.parametrize(
    "value", ["plain", "with space", "it's", "$HOME", "`id`", "a\\b", "", "-1/-1", "ünï"]
)
def test_sh_is_one_word_the_shell_reads_back(value: str) -> None:
    done = subprocess.run(
        ["sh", "-c", f"printf %s {sh(value)}"], capture_output=True, text=True, check=True
    )
    assert done.stdout == value


def test_heredoc_expands_nothing_npc_did_not_add() -> None:
    text = 'a $HOME `id` \\n ${x} "q"'
    script = f"cat <<EOF\n{heredoc(text)}\nEOF\n"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == text + "\n"


def test_comments_are_one_line() -> None:
    assert sh_comment("a\nb\t c") == "a b c"


def test_selectors_put_single_values_in_match_labels() -> None:
    terms = (
        ir.Requirement("app", ir.Operator.IN, ("web",)),
        ir.Requirement("tier", ir.Operator.NOT_IN, ("db",)),
        ir.Requirement("canary", ir.Operator.DOES_NOT_EXIST),
        ir.Requirement("team", ir.Operator.IN, ("a", "b")),
    )
    assert selector_object(terms) == {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "team", "operator": "In", "values": ["a", "b"]},
            {"key": "tier", "operator": "NotIn", "values": ["db"]},
        ],
    }
    assert selector_object(()) == {}
