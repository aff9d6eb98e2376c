"""Loading an iptables ruleset and its ipsets into the current network namespace.

The order makes every failure leave the previous ruleset enforcing:

1. **ipsets.** Set names are digests of their contents (:mod:`.plan`), so the new ruleset's
   sets either exist already with the right members or are new names nothing refers to
   yet. Missing sets are created and filled; an existing one whose members were changed
   behind npc's back is refilled under a temporary name and exchanged with ``ipset swap``
   (atomic per set). A refusal destroys what this step created.
2. **chains, tested.** Each family's part goes through ``iptables-restore --test
   --noflush`` (the sets exist now, so set matches resolve) before anything changes.
3. **chains, committed.** ``iptables-restore --noflush``: the part declares every NPC chain
   it fills, so each is flushed and refilled in one commit, and the jump from ``FORWARD``
   into ``NPC-FORWARD`` is added in the same commit when ``iptables-save`` shows none (``-I
   FORWARD 1``), duplicates removed. If the IPv6 commit fails after the IPv4 one succeeded,
   the IPv4 chains are restored from what ``iptables-save`` printed before.
4. **stale objects.** NPC chains and sets the new ruleset no longer names (they were
   created by an earlier apply; nothing else is ever removed) are deleted last, when nothing
   refers to them; a failure there is reported but changes no verdict.

``--dry-run`` changes nothing: it loads the sets and runs ``iptables-restore --test`` in a
private, empty network namespace (``unshare --net``), and says what would change here.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from npc.backends.iptables import syntax
from npc.errors import BackendError, Code, Diagnostic, Location, Severity

__all__ = ["RESTORE_TIMEOUT", "RULESET", "SETS", "Section", "apply_ruleset", "sections"]

#: How long one restore may take.
RESTORE_TIMEOUT = 300.0
#: Names under which positions in the two files are reported.
RULESET = "<iptables ruleset>"
SETS = "<ipset file>"

_MARKER = re.compile(r"^# (ip6?tables)-restore --noflush")
_LINE = re.compile(r"(?:Error occurred at line: |line )(\d+)")
#: How iptables and ipset start their messages (``ip6tables-nft-restore v1.8.9 (nf_tables): ``).
_PROGRAM = re.compile(r"^(?:ip6?tables|ipset)\S*(?: v[\d.]+(?: \([\w_]+\))?)?:(?: |$)")
_IPSET_LINE = re.compile(r"Error in line (\d+): (.*)")
_NOT_PERMITTED = (
    "changing iptables and ipsets needs CAP_NET_ADMIN in the network namespace (run as root)"
)


@dataclass(frozen=True, slots=True)
class Section:
    """One family's part of the restore file: its text and the line it starts at."""

    family: int
    first_line: int
    text: str

    @property
    def chains(self) -> tuple[str, ...]:
        return tuple(line[1:].split()[0] for line in self.text.splitlines() if line.startswith(":"))


def sections(text: str) -> dict[int, Section]:
    """The family parts of a restore file npc wrote (each from its marker line to COMMIT)."""
    found: dict[int, Section] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        marker = _MARKER.match(lines[i])
        if marker is None:
            i += 1
            continue
        family = 6 if marker[1] == "ip6tables" else 4
        end = i
        while end < len(lines) and lines[end] != "COMMIT":
            end += 1
        found[family] = Section(family, i + 1, "\n".join(lines[i : end + 1]) + "\n")
        i = end + 1
    return found


@dataclass(frozen=True, slots=True)
class _Set:
    create: str  # the create line's arguments after the name
    line: int  # where the create line is
    members: tuple[tuple[str, int], ...]  # each entry as written, and its line

    @property
    def entries(self) -> frozenset[str]:
        """The members normalised, so that ``10.0.0.1`` and ``10.0.0.1/32`` are one."""
        return frozenset(_normal(e) for e, _ in self.members)


def _parse_sets(text: str) -> dict[str, _Set]:
    """``create``/``add`` lines (npc's ipset file, or ``ipset save``) by set name."""
    creates: dict[str, tuple[str, int]] = {}
    members: dict[str, list[tuple[str, int]]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if len(words) >= 3 and words[0] == "create":
            creates[words[1]] = (" ".join(words[2:]), number)
            members.setdefault(words[1], [])
        elif len(words) >= 3 and words[0] == "add":
            members.setdefault(words[1], []).append((words[2], number))
    return {
        name: _Set(create, line, tuple(members[name])) for name, (create, line) in creates.items()
    }


def _normal(entry: str) -> str:
    try:
        return str(ipaddress.ip_network(entry, strict=False))
    except ValueError:
        return entry


def _same_type(a: str, b: str) -> bool:
    """Whether two create lines make the same kind of set (``hash:ip family inet ...``)."""
    return a.split()[:3] == b.split()[:3]


@dataclass(slots=True)
class _Tools:
    variant: str | None
    found: dict[str, str] = field(default_factory=dict)

    def path(self, tool: str) -> str:
        if tool not in self.found:
            name = tool
            if tool != "ipset":
                base, _, action = tool.partition("-")
                variant = f"-{self.variant}" if self.variant else ""  # iptables-legacy-save
                name = f"{base}{variant}-{action}"
            binary = shutil.which(name)
            if binary is None:
                package = "ipset" if tool == "ipset" else "iptables"
                raise BackendError(
                    Diagnostic(
                        Code.APPLY_FAILED,
                        Severity.ERROR,
                        f"{name} not found on PATH; nothing was changed",
                        hint=f"install {package} (e.g. `apt-get install {package}`)",
                    )
                )
            self.found[tool] = binary
        return self.found[tool]

    def run(
        self, tool: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [self.path(tool), *args]
        try:
            return subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=RESTORE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BackendError(
                Diagnostic(
                    Code.APPLY_FAILED,
                    Severity.ERROR,
                    f"{command[0]} did not finish within {RESTORE_TIMEOUT:.0f} s",
                )
            ) from exc


def _fail(
    what: str, stderr: str, location: Location | None = None, hint: str | None = None
) -> BackendError:
    """A diagnostic from a tool's stderr: its first error line (without the tool's name and
    version), the warnings it printed before (a missing kernel module...) in the hint."""
    errors: list[str] = []
    warnings: list[str] = []
    for raw in stderr.splitlines():
        line = _PROGRAM.sub("", raw.strip())
        if not line or line.startswith(("Try `", "Error occurred at line")):
            continue
        (warnings if line.startswith("Warning:") else errors).append(line)
    message = errors[0] if errors else (warnings[0] if warnings else "no error message")
    hints = [h for h in (hint, *warnings) if h and h != message]
    if "Permission denied" in stderr or "Operation not permitted" in stderr:
        hints.append(_NOT_PERMITTED)
    return BackendError(
        Diagnostic(
            Code.APPLY_FAILED,
            Severity.ERROR,
            f"{what}: {message}",
            location=location,
            hint="; ".join(hints) or None,
        )
    )


def _restore_error(tool: str, section: Section, stderr: str, text: str) -> BackendError:
    found = _LINE.search(stderr)
    location = hint = None
    if found is not None:
        # lines npc appended before COMMIT (the FORWARD jump) count as the COMMIT line
        within = min(int(found[1]), section.text.count("\n"))
        number = section.first_line + within - 1
        location = Location(RULESET, number, 1)
        lines = text.splitlines()
        if 0 < number <= len(lines):
            hint = f"line {number}: {lines[number - 1].strip()}"
    return _fail(f"{tool}-restore refused the ruleset, nothing was changed", stderr, location, hint)


@dataclass(frozen=True, slots=True)
class _Saved:
    """What ``iptables-save -t filter`` shows of npc's: its chains and rules, the jumps."""

    chains: tuple[str, ...]
    rules: tuple[str, ...]
    jumps: int


def _saved(output: str) -> _Saved:
    chains: list[str] = []
    rules: list[str] = []
    jumps = 0
    for line in output.splitlines():
        if line.startswith(":") and syntax.is_own(line[1:]):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A "):
            words = line.split()
            if syntax.is_own(words[1]):
                rules.append(line)
            elif words[1:] == ["FORWARD", "-j", "NPC-FORWARD"]:
                jumps += 1
    return _Saved(tuple(chains), tuple(rules), jumps)


def _with_jump(section: Section, saved: _Saved) -> str:
    """The part, plus the ``FORWARD`` jump in the same commit when it is missing (and minus
    duplicates)."""
    extra = []
    if saved.jumps == 0:
        extra.append("-I FORWARD 1 -j NPC-FORWARD")
    extra += ["-D FORWARD -j NPC-FORWARD"] * max(0, saved.jumps - 1)
    body = section.text.rstrip("\n")
    assert body.endswith("COMMIT")
    return body[: -len("COMMIT")] + "".join(f"{e}\n" for e in extra) + "COMMIT\n"


def _rollback(saved: _Saved, section: Section) -> str:
    """A restore input putting back the NPC chains ``saved`` showed (and nothing of ours
    that it did not show)."""
    lines = ["*filter"]
    lines += [f":{c} - [0:0]" for c in saved.chains]
    lines += list(saved.rules)
    if saved.jumps == 0:
        lines.append("-D FORWARD -j NPC-FORWARD")
    new = [c for c in section.chains if c not in saved.chains]
    lines += [f"-F {c}" for c in new] + [f"-X {c}" for c in new]
    return "\n".join([*lines, "COMMIT"]) + "\n"


def _set_script(
    wanted: dict[str, _Set], current: dict[str, _Set]
) -> tuple[list[str], list[int], list[str]]:
    """The ``ipset restore`` input (and, per line, the ipset file's line it comes from) and
    the names it creates under their final names."""
    script: list[str] = []
    origin: list[int] = []
    created: list[str] = []
    for name, want in wanted.items():
        have = current.get(name)
        if (
            have is not None
            and have.entries == want.entries
            and _same_type(have.create, want.create)
        ):
            continue
        target = name if have is None else "NPC-T" + name[len(syntax.PREFIX) :]
        if have is None:
            created.append(name)
        script.append(f"create {target} {want.create}")
        origin.append(want.line)
        for entry, line in want.members:
            script.append(f"add {target} {entry}")
            origin.append(line)
        if have is not None:
            script += [f"swap {target} {name}", f"destroy {target}"]
            origin += [want.line, want.line]
    return script, origin, created


def apply_ruleset(rules: str, ipsets: str, variant: str | None, *, dry_run: bool) -> str:
    """Load the restore file ``rules`` and the ipset file ``ipsets`` (npc's own output) into
    this network namespace; returns a one-line summary. Raises BackendError."""
    tools = _Tools(variant)
    parts = sections(rules)
    wanted = _parse_sets(ipsets)
    if dry_run:
        return _dry_run(tools, rules, ipsets, parts, wanted)
    started = time.perf_counter()
    current: dict[str, _Set] = {}
    if wanted or shutil.which("ipset"):
        done = tools.run("ipset", "save")
        if done.returncode != 0:
            raise _fail("ipset save failed, nothing was changed", done.stderr)
        current = {n: s for n, s in _parse_sets(done.stdout).items() if syntax.is_own(n)}
    script, origin, created = _set_script(wanted, current)

    def undo_sets() -> None:
        for name in created:
            tools.run("ipset", "destroy", name)
        for name in wanted:
            tools.run("ipset", "destroy", "NPC-T" + name[len(syntax.PREFIX) :])

    if script:
        done = tools.run("ipset", "restore", stdin="\n".join(script) + "\n")
        if done.returncode != 0:
            undo_sets()
            found = _IPSET_LINE.search(done.stderr)
            location = None
            if found is not None and 0 < int(found[1]) <= len(origin):
                location = Location(SETS, origin[int(found[1]) - 1], 1)
            raise _fail("ipset refused the sets, nothing was changed", done.stderr, location)
    saved: dict[int, _Saved] = {}
    inputs: dict[int, str] = {}
    for family, part in sorted(parts.items()):
        tool = "iptables" if family == 4 else "ip6tables"
        done = tools.run(f"{tool}-save", "-t", "filter")
        if done.returncode != 0:
            undo_sets()
            raise _fail(f"{tool}-save failed, nothing was changed", done.stderr)
        saved[family] = _saved(done.stdout)
        inputs[family] = _with_jump(part, saved[family])
        done = tools.run(f"{tool}-restore", "-w", "--test", "--noflush", stdin=inputs[family])
        if done.returncode != 0:
            undo_sets()
            raise _restore_error(tool, part, done.stderr, rules)
    committed: list[int] = []
    for family, part in sorted(parts.items()):
        tool = "iptables" if family == 4 else "ip6tables"
        done = tools.run(f"{tool}-restore", "-w", "--noflush", stdin=inputs[family])
        if done.returncode != 0:
            for earlier in committed:
                back = "iptables" if earlier == 4 else "ip6tables"
                tools.run(
                    f"{back}-restore", "-w", "--noflush",
                    stdin=_rollback(saved[earlier], parts[earlier]),
                )  # fmt: skip
            undo_sets()
            raise _restore_error(tool, part, done.stderr, rules)
        committed.append(family)
    problems = _remove_stale(tools, parts, saved, wanted, current)
    elapsed = time.perf_counter() - started
    chains = sum(len(p.chains) for p in parts.values())
    summary = (
        f"loaded {chains} NPC chains ({', '.join(f'IPv{f}' for f in sorted(parts))}) and "
        f"{len(wanted)} ipsets in {elapsed:.2f} s"
    )
    return summary + "".join(f"; {p}" for p in problems)


def _remove_stale(
    tools: _Tools,
    parts: dict[int, Section],
    saved: dict[int, _Saved],
    wanted: dict[str, _Set],
    current: dict[str, _Set],
) -> list[str]:
    problems: list[str] = []
    for family, part in sorted(parts.items()):
        stale = [c for c in saved[family].chains if c not in part.chains]
        if not stale:
            continue
        tool = "iptables" if family == 4 else "ip6tables"
        text = "\n".join(
            ["*filter", *(f"-F {c}" for c in stale), *(f"-X {c}" for c in stale), "COMMIT"]
        )
        done = tools.run(f"{tool}-restore", "-w", "--noflush", stdin=text + "\n")
        if done.returncode != 0:
            problems.append(f"{len(stale)} stale {tool} chains could not be removed")
    stale_sets = [n for n in current if n not in wanted]
    failed = sum(tools.run("ipset", "destroy", n).returncode != 0 for n in stale_sets)
    if failed:
        problems.append(f"{failed} stale ipsets could not be destroyed (still in use?)")
    return problems


def _dry_run(
    tools: _Tools, rules: str, ipsets: str, parts: dict[int, Section], wanted: dict[str, _Set]
) -> str:
    """Load the sets and test the chains in an empty private network namespace."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise BackendError(
            Diagnostic(
                Code.APPLY_FAILED,
                Severity.ERROR,
                "--dry-run needs `unshare` (util-linux) to test in a private network namespace",
            )
        )
    with tempfile.TemporaryDirectory(prefix="npc-dry-run-") as tmp:
        work = Path(tmp)
        (work / "sets").write_text(ipsets, encoding="utf-8")
        steps = []
        if wanted:
            steps.append(f'"{tools.path("ipset")}" restore < sets || exit 10')
        for family, part in sorted(parts.items()):
            tool = "iptables" if family == 4 else "ip6tables"
            (work / f"rules{family}").write_text(part.text, encoding="utf-8")
            restore = tools.path(f"{tool}-restore")
            steps.append(f'"{restore}" --test --noflush < rules{family} || exit {family}')
        done = subprocess.run(
            [unshare, "--net", "sh", "-c", "; ".join(steps)],
            cwd=work, capture_output=True, text=True, timeout=RESTORE_TIMEOUT, check=False,
        )  # fmt: skip
    if done.returncode == 10:
        raise _fail("ipset refused the sets (dry run)", done.stderr)
    if done.returncode in parts:
        tool = "iptables" if done.returncode == 4 else "ip6tables"
        raise _restore_error(tool, parts[done.returncode], done.stderr, rules)
    if done.returncode != 0:
        raise _fail("--dry-run could not test in a private network namespace", done.stderr)
    chains = sum(len(p.chains) for p in parts.values())
    return (
        f"iptables-restore --test accepted {chains} NPC chains and ipset {len(wanted)} sets; "
        "nothing was changed (dry run)"
    )
