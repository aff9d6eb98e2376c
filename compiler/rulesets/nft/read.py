"""Read nft files (``nft -f`` scripts, ``nft list ruleset`` output) into a resolved
:class:`~npc.rulesets.nft.model.Ruleset`.

The files are run as ``nft -f`` would, in order: ``table F N`` creates a table if it is
missing, a ``table F N { ... }`` block creates or extends it (a chain or set declared again
gets the new rules or elements appended), ``delete table`` removes one (a missing one is an
error, as nft's transaction fails), ``flush table`` empties every chain of the table (nft(8),
"TABLES", ``flush``; its sets keep their elements), ``flush ruleset`` removes every table.
Then every table is resolved: values interpreted by the type of what they are matched with,
set references, jump targets and verdict maps checked, jump loops refused.

Which tables count (nft(8), "ADDRESS FAMILIES" and the nftables wiki, "Netfilter hooks"):
``ip``, ``ip6`` and ``inet`` tables see forwarded IPv4/IPv6 traffic and are kept; ``arp``
tables see only ARP and are ignored; ``bridge`` and ``netdev`` tables see frames on bridges
and devices, which can be pod traffic (a bridge-based CNI bridges pods of one node), so one
with a base chain is refused; a table with ``flags dormant`` is not evaluated at all. Of the
hooks, ``input`` and ``output`` see only traffic to and from the node itself and are ignored;
``prerouting`` and ``postrouting`` (and ``ingress``/``egress``) see forwarded packets too, and
the judge does not model them: such a chain is refused unless it has no rules and policy
accept, which provably changes nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from npc.errors import Code, Diagnostic, InputError, Location, Severity
from npc.rulesets.base import Text
from npc.rulesets.nft import values
from npc.rulesets.nft.model import (
    Chain,
    Element,
    Field,
    Hook,
    Kind,
    Match,
    Nop,
    Rule,
    Ruleset,
    SetDef,
    Statement,
    Table,
    Verdict,
    VerdictMap,
)
from npc.rulesets.nft.script import (
    SChain,
    SCommand,
    SElements,
    SField,
    SMatch,
    SNop,
    SRule,
    SSet,
    SSetRef,
    STable,
    SValue,
    SVerdict,
    SVmap,
    Word,
    parse_script,
)

__all__ = ["read_ruleset"]

_IP_FAMILIES = ("ip", "ip6", "inet")
_FAMILIES = (*_IP_FAMILIES, "arp", "bridge", "netdev")
_LOCAL_HOOKS = ("input", "output")
_SOURCE_PORTS = ("th sport", "tcp sport", "udp sport", "sctp sport", "udplite sport")


def _error(location: Location, message: str, hint: str | None = None) -> InputError:
    return InputError(
        [Diagnostic(Code.INVALID_VALUE, Severity.ERROR, message, location=location, hint=hint)]
    )


@dataclass(slots=True)
class _ChainDraft:
    name: Word
    hook: SChain | None = None
    policy: SVerdict | None = None
    rules: list[SRule] = field(default_factory=list)


@dataclass(slots=True)
class _SetDraft:
    decl: SSet
    items: list[SSet] = field(default_factory=list)


@dataclass(slots=True)
class _TableDraft:
    family: str
    name: str
    location: Location
    chains: dict[str, _ChainDraft] = field(default_factory=dict)
    sets: dict[str, _SetDraft] = field(default_factory=dict)
    flags: list[Word] = field(default_factory=list)


def _key(family: Word | None, name: Word | None) -> tuple[str, str]:
    assert family is not None and name is not None
    if family.text not in _FAMILIES:
        raise _error(family.location, f'nft: unknown table family "{family.text}"')
    return family.text, name.text


def _run(commands: Iterable[STable | SCommand], tables: dict[tuple[str, str], _TableDraft]) -> None:
    for command in commands:
        if isinstance(command, STable):
            key = _key(command.family, command.name)
            table = tables.setdefault(key, _TableDraft(*key, command.location))
            _extend(table, command)
        elif command.kind == "table":
            key = _key(command.family, command.name)
            tables.setdefault(key, _TableDraft(*key, command.location))
        elif command.kind == "delete table":
            key = _key(command.family, command.name)
            if tables.pop(key, None) is None:
                raise _error(command.location, f"nft: delete table {' '.join(key)}: no such table")
        elif command.kind == "flush table":
            key = _key(command.family, command.name)
            if key not in tables:
                raise _error(command.location, f"nft: flush table {' '.join(key)}: no such table")
            for chain in tables[key].chains.values():
                chain.rules.clear()
        else:  # flush ruleset [family]
            family = command.family.text if command.family is not None else None
            for key in [k for k in tables if family is None or k[0] == family]:
                del tables[key]


def _extend(table: _TableDraft, block: STable) -> None:
    for item in block.others:
        if item.kind == "flags":
            table.flags.extend(item.words)
    for chain in block.chains:
        draft = table.chains.setdefault(chain.name.text, _ChainDraft(chain.name))
        if len(chain.hooks) > 1:
            raise _error(chain.hooks[1].location, f"nft: chain {chain.name}: a second hook")
        if chain.hooks:
            if draft.hook is not None and draft.hook.hooks[0] != chain.hooks[0]:
                raise _error(chain.hooks[0].location, f"nft: chain {chain.name}: hook changed")
            draft.hook = chain
        if chain.policies:
            draft.policy = chain.policies[-1]
        draft.rules.extend(chain.rules)
    for s in block.sets:
        found = table.sets.get(s.name.text)
        if found is None:
            table.sets[s.name.text] = _SetDraft(s, [s])
        elif found.decl.is_map != s.is_map:
            raise _error(s.location, f"nft: {s.name} is declared as both a set and a map")
        else:
            found.items.append(s)


# -- resolving one table -----------------------------------------------------------------


def _fields(written: Sequence[SField]) -> tuple[Field, ...]:
    out = []
    for f in written:
        found = values.field(f.name, f.first.location)
        if found is None:
            hint = (
                "a flow's source port is not known (it is chosen by the client)"
                if f.name in _SOURCE_PORTS
                else "the nft judge models: " + ", ".join(values.FIELDS)
            )
            raise _error(f.first.location, f"nft: expression `{f.name}` is not modelled", hint)
        out.append(found)
    return tuple(out)


def _element(kinds: Sequence[Kind], value: SValue, verdict: Verdict | None = None) -> Element:
    if len(value.parts) != len(kinds):
        raise _error(
            value.location,
            f"nft: {' . '.join(p.text for p in value.parts)} has {len(value.parts)} "
            f"component(s), the type {' . '.join(kinds)} has {len(kinds)}",
        )
    spans = []
    for kind, part in zip(kinds, value.parts, strict=True):
        try:
            spans.append(values.parse_value(kind, part.text))
        except (ValueError, KeyError, TypeError):
            raise _error(
                part.location, f'nft: "{part.text}" is not a value of type {kind}'
            ) from None
    return Element(tuple(spans), value.location, verdict)


class _Resolver:
    """Resolves one table's drafts into its model, checking every reference."""

    def __init__(self, draft: _TableDraft) -> None:
        self.draft = draft
        self.sets = {name: self._set(s) for name, s in draft.sets.items()}

    def _verdict(self, v: SVerdict) -> Verdict:
        target = v.target.text if v.target is not None else ""
        if target and target not in self.draft.chains:
            raise _error(v.location, f"nft: {v.kind} {target}: no such chain in {self._name()}")
        if target and self.draft.chains[target].hook is not None:
            raise _error(v.location, f"nft: {v.kind} {target}: cannot jump to a base chain")
        return Verdict(v.kind, v.location, target)

    def _name(self) -> str:
        return f"table {self.draft.family} {self.draft.name}"

    def _set(self, draft: _SetDraft) -> SetDef:
        decl = draft.decl
        kinds: tuple[Kind, ...] | None = None
        interval = False
        written: list[tuple[SValue, SVerdict | SValue | None]] = []
        for s in draft.items:
            for item in s.items:
                if item.kind in ("type", "map type"):
                    words = item.words[:-1] if item.kind == "map type" else item.words
                    if item.kind == "map type" and item.words[-1].text != "verdict":
                        raise _error(item.words[-1].location, "nft: only verdict maps are modelled")
                    if s.is_map != (item.kind == "map type"):
                        raise _error(item.location, f"nft: {decl.name}: the type does not fit")
                    found = tuple(values.kind_of(w.text) for w in words)
                    bad = next((w for w, k in zip(words, found, strict=True) if k is None), None)
                    if bad is not None:
                        raise _error(bad.location, f'nft: set type "{bad.text}" is not modelled')
                    new = tuple(k for k in found if k is not None)
                    if kinds is not None and new != kinds:
                        raise _error(item.location, f"nft: {decl.name}: type changed")
                    kinds = new
                elif item.kind == "flags":
                    for w in item.words:
                        if w.text == "interval":
                            interval = True
                        elif w.text not in ("constant", "timeout", "dynamic"):
                            raise _error(w.location, f'nft: set flag "{w.text}" is not modelled')
                elif item.kind == "elements":
                    assert item.elements is not None
                    written.extend((e.key, e.data) for e in item.elements.items)
                elif item.kind == "typeof":
                    raise _error(item.location, "nft: `typeof` sets are not modelled: use `type`")
                # comment, size, policy, timeout, gc-interval, auto-merge, counter: no effect
        if kinds is None:
            raise _error(decl.location, f"nft: {decl.name} has no type")
        elements = []
        for key, data in written:
            if decl.is_map != isinstance(data, SVerdict):
                raise _error(key.location, f"nft: {decl.name}: element does not fit the type")
            verdict = self._verdict(data) if isinstance(data, SVerdict) else None
            element = _element(kinds, key, verdict)
            if not interval and any(lo != hi for lo, hi in element.key):
                raise _error(
                    key.location,
                    f"nft: {decl.name}: a prefix or range needs `flags interval` in the set",
                )
            elements.append(element)
        return SetDef(decl.name.text, kinds, tuple(elements), decl.location, interval, decl.is_map)

    def _named(self, ref: SSetRef, fields: tuple[Field, ...], is_map: bool) -> str:
        found = self.sets.get(ref.name.text)
        if found is None:
            raise _error(ref.name.location, f"nft: @{ref.name}: no such set in {self._name()}")
        if found.is_map != is_map:
            what = "verdict map" if is_map else "set"
            raise _error(ref.name.location, f"nft: @{ref.name} is not a {what}")
        if found.kinds != tuple(f.kind for f in fields):
            raise _error(
                ref.name.location,
                f"nft: @{ref.name} holds {' . '.join(found.kinds)}, "
                f"matched with {' . '.join(f.kind for f in fields)}",
            )
        return found.name

    def _anonymous(
        self, fields: tuple[Field, ...], written: SElements, is_map: bool
    ) -> tuple[Element, ...]:
        kinds = tuple(f.kind for f in fields)
        out = []
        for e in written.items:
            if is_map != isinstance(e.data, SVerdict):
                raise _error(
                    e.key.location,
                    "nft: element does not fit (a verdict map needs "
                    "`key : verdict`, a set only keys)",
                )
            out.append(
                _element(
                    kinds, e.key, self._verdict(e.data) if isinstance(e.data, SVerdict) else None
                )
            )
        return tuple(out)

    def _statement(self, s: SMatch | SVmap | SVerdict | SNop) -> Statement:
        if isinstance(s, SVerdict):
            return self._verdict(s)
        if isinstance(s, SNop):
            return Nop(s.kind, s.location)
        fields = _fields(s.fields)
        if isinstance(s, SVmap):
            if isinstance(s.target, SSetRef):
                return VerdictMap(fields, s.location, set_name=self._named(s.target, fields, True))
            return VerdictMap(fields, s.location, self._anonymous(fields, s.target, True))
        negate = s.op in ("!=", "ne")
        if isinstance(s.rhs, SSetRef):
            return Match(fields, s.location, negate, set_name=self._named(s.rhs, fields, False))
        if isinstance(s.rhs, SElements):
            return Match(fields, s.location, negate, self._anonymous(fields, s.rhs, False))
        kinds = tuple(f.kind for f in fields)
        if len(s.rhs) > 1 and kinds != (Kind.CT_STATE,):
            raise _error(s.rhs[1].location, "nft: a list of values needs braces: { a, b }")
        return Match(fields, s.location, negate, tuple(_element(kinds, v) for v in s.rhs))

    def _rule(self, rule: SRule) -> Rule:
        statements = tuple(self._statement(s) for s in rule.statements)
        for before, after in itertools.pairwise(statements):
            if isinstance(before, Verdict):
                raise _error(after.location, "nft: a statement after a verdict never runs")
        return Rule(statements, rule.location, rule.comment)

    def _hook(self, chain: _ChainDraft) -> Hook | None:
        policy = chain.policy.kind if chain.policy is not None else "accept"
        if chain.hook is None:
            if chain.policy is not None:
                raise _error(chain.policy.location, "nft: only a base chain has a policy")
            return None
        written = chain.hook.hooks[0]
        base, offset = written.priority
        if base is not None and base.text not in values.PRIORITIES:
            raise _error(base.location, f'nft: unknown priority name "{base.text}"')
        priority = (values.PRIORITIES[base.text] if base is not None else 0) + offset
        if written.type.text not in ("filter", "nat", "route"):
            raise _error(written.type.location, f'nft: unknown chain type "{written.type}"')
        hook = Hook(written.type.text, written.hook.text, priority, policy, written.location)
        if hook.hook not in ("forward", *_LOCAL_HOOKS) and (chain.rules or policy != "accept"):
            raise _error(
                written.location,
                f"nft: chain {chain.name}: a {hook.hook} hook chain with rules is not modelled",
                hint="forwarded packets cross prerouting and postrouting too; the judge models "
                "the forward hook (and ignores input/output, which forwarded packets never see)",
            )
        return hook

    def table(self) -> Table:
        chains = tuple(
            Chain(name, tuple(self._rule(r) for r in c.rules), c.name.location, self._hook(c))
            for name, c in self.draft.chains.items()
        )
        table = Table(
            self.draft.family,
            self.draft.name,
            chains,
            tuple(self.sets.values()),
            self.draft.location,
        )
        _refuse_loops(table)
        return table


def _targets(table: Table, chain: Chain) -> Iterable[Verdict]:
    for rule in chain.rules:
        for s in rule.statements:
            if isinstance(s, Verdict) and s.target:
                yield s
            elif isinstance(s, VerdictMap):
                found = table.set(s.set_name) if s.set_name else None
                elements = found.elements if found is not None else s.elements
                yield from (e.verdict for e in elements if e.verdict and e.verdict.target)


def _refuse_loops(table: Table) -> None:
    """nft refuses rulesets whose jumps loop; so does the judge (evaluation must end)."""
    done: set[str] = set()

    def visit(chain: Chain, path: tuple[str, ...]) -> None:
        for verdict in _targets(table, chain):
            if verdict.target in path:
                raise _error(verdict.location, f"nft: {verdict}: jumps loop back to a chain")
            target = table.chain(verdict.target)
            if target is not None and target.name not in done:
                visit(target, (*path, target.name))
        done.add(chain.name)

    for chain in table.chains:
        if chain.name not in done:
            visit(chain, (chain.name,))


def _keep(draft: _TableDraft, table: Table) -> bool:
    """Whether the table can see forwarded IP traffic (see the module docstring)."""
    if any(f.text == "dormant" for f in draft.flags):
        return False
    if draft.family in _IP_FAMILIES:
        return True
    if draft.family == "arp":
        return False
    based = next((c for c in draft.chains.values() if c.hook is not None), None)
    if based is not None:
        assert based.hook is not None
        raise _error(
            based.hook.hooks[0].location,
            f"nft: a base chain of a {draft.family} table can see pod traffic and is not modelled",
        )
    return False


def read_ruleset(sources: Sequence[Text]) -> Ruleset:
    """Run every source as ``nft -f`` would, in order, and resolve the result."""
    tables: dict[tuple[str, str], _TableDraft] = {}
    for source in sources:
        _run(parse_script(source.name, source.text).commands, tables)
    kept = []
    for draft in tables.values():
        if draft.family not in _IP_FAMILIES and not any(c.hook for c in draft.chains.values()):
            continue
        table = _Resolver(draft).table() if draft.family in _IP_FAMILIES else None
        if table is not None and _keep(draft, table):
            kept.append(table)
        elif table is None:
            _keep(draft, Table(draft.family, draft.name, (), (), draft.location))
    return Ruleset(tuple(kept))
