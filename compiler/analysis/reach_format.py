"""Rendering reachability: JSON, CSV, a truth table, and a class-level summary.

A :class:`ReachView` is the question being answered: which source pods, which destination
pods, which probes. Every renderer is deterministic (pods sorted by ``namespace/name``,
probes by port and protocol) and the big ones stream: JSON and CSV are produced as chunks,
one source pod at a time, expanded from the class matrices on demand, so a 10,000-pod
answer never sits in memory as one string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from npc.analysis.reach import ClassMatrix, Reach
from npc.flows import Probe
from npc.resolve import bit_indices
from npc.snapshot import Pod
from npc.wording import plural

__all__ = ["MAX_TABLE_COLUMNS", "MAX_TABLE_ROWS", "ReachView", "csv_chunks", "json_chunks"]

#: Largest truth table printed: destinations (columns) and sources (rows).
MAX_TABLE_COLUMNS = 60
MAX_TABLE_ROWS = 400

ALLOWED, DENIED, ITSELF = "+", "-", "="
_ANSI = {"green": "\x1b[32m", "red": "\x1b[31m", "dim": "\x1b[2m", "bold": "\x1b[1m"}
_RESET = "\x1b[0m"


def _paint(text: str, style: str, colour: bool) -> str:
    return f"{_ANSI[style]}{text}{_RESET}" if colour else text


@dataclass(frozen=True)
class ReachView:
    """Sources, destinations and probes over one :class:`Reach`; pods sorted by key."""

    reach: Reach
    probes: tuple[Probe, ...]
    sources: tuple[Pod, ...]
    targets: tuple[Pod, ...]
    _class_index: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def of(
        cls,
        reach: Reach,
        probes: Sequence[Probe],
        sources: Sequence[Pod] | None = None,
        targets: Sequence[Pod] | None = None,
    ) -> ReachView:
        """Sources and targets default to every pod; probes are sorted and deduplicated."""
        pods = reach.pods

        def ordered(chosen: Sequence[Pod] | None) -> tuple[Pod, ...]:
            return tuple(sorted(pods if chosen is None else chosen, key=lambda p: p.key))

        return cls(reach, tuple(sorted(set(probes))), ordered(sources), ordered(targets))

    def __post_init__(self) -> None:
        for p in (*self.sources, *self.targets):
            self._class_index[p.key] = self.reach.class_of(p).index

    @property
    def pods(self) -> tuple[Pod, ...]:
        """Sources and destinations together, sorted by key."""
        return tuple(
            sorted({p.key: p for p in (*self.sources, *self.targets)}.values(), key=lambda p: p.key)
        )

    def class_index(self, pod: Pod) -> int:
        return self._class_index[pod.key]

    def row(self, matrix: ClassMatrix, src: Pod) -> list[bool]:
        """Verdicts from ``src`` to every target, in target order."""
        bits = matrix.rows[self.class_index(src)]
        row = [bool(bits >> self.class_index(t) & 1) for t in self.targets]
        for j, t in enumerate(self.targets):
            if t.key == src.key:
                row[j] = True  # a pod always reaches itself
        return row

    def allowed_pairs(self, matrix: ClassMatrix) -> int:
        """How many (source, target) pairs are allowed, self pairs included."""
        weights = _Weights(self.target_counts())
        targets = {t.key for t in self.targets}
        sources: dict[int, int] = {}
        both: dict[int, int] = {}  # sources that are targets too, per class
        for s in self.sources:
            ci = self.class_index(s)
            sources[ci] = sources.get(ci, 0) + 1
            if s.key in targets:
                both[ci] = both.get(ci, 0) + 1
        total = 0
        for ci, n in sources.items():
            bits = matrix.rows[ci]
            total += n * weights.total(bits)
            if not bits >> ci & 1:
                total += both.get(ci, 0)  # each reaches itself, though not its class
        return total

    def target_counts(self) -> dict[int, int]:
        """Class index -> how many targets are in it."""
        counts: dict[int, int] = {}
        for t in self.targets:
            ci = self.class_index(t)
            counts[ci] = counts.get(ci, 0) + 1
        return counts


class _Weights:
    """Sums of per-class weights over a class bitset, as a few AND + popcounts: the weights
    are split into bit planes (plane k holds the classes whose weight has bit k set)."""

    def __init__(self, weights: dict[int, int]) -> None:
        top = max(weights.values(), default=0).bit_length()
        self.planes = [0] * top
        for ci, w in weights.items():
            for k in range(top):
                if w >> k & 1:
                    self.planes[k] |= 1 << ci

    def total(self, bits: int) -> int:
        return sum((bits & plane).bit_count() << k for k, plane in enumerate(self.planes))


# -- JSON and CSV -----------------------------------------------------------------------------


def json_chunks(view: ReachView) -> Iterator[str]:
    """``{"pods": [...], "probes": [{"port": 80, "protocol": "TCP", "allowed": {src: {dst:
    bool}}}]}``, exactly what ``json.dumps`` prints for that object, plus a newline.

    ``pods`` lists every source and destination; ``allowed`` has a row for every source and,
    in it, every destination; all sorted by ``namespace/name``."""
    yield '{"pods": ' + json.dumps([p.key for p in view.pods]) + ', "probes": ['
    keys = [json.dumps(t.key) + ": " for t in view.targets]
    fragments = ([k + "false" for k in keys], [k + "true" for k in keys])
    position = {t.key: j for j, t in enumerate(view.targets)}
    target_classes = [view.class_index(t) for t in view.targets]
    for n, probe in enumerate(view.probes):
        matrix = view.reach.matrix(probe)
        yield ", " if n else ""
        yield (
            f'{{"port": {probe.port}, "protocol": {json.dumps(str(probe.protocol))}, "allowed": {{'
        )
        last_class = -1
        parts: list[str] = []
        for i, src in enumerate(view.sources):
            ci = view.class_index(src)
            if ci != last_class:  # pods of one class share their row, bar themselves
                bits = matrix.rows[ci]
                parts = [fragments[bits >> c & 1][j] for j, c in enumerate(target_classes)]
                last_class = ci
            row = parts
            j = position.get(src.key)
            if j is not None and not bits >> ci & 1:
                row = parts.copy()
                row[j] = fragments[1][j]
            yield (", " if i else "") + json.dumps(src.key) + ": {" + ", ".join(row) + "}"
        yield "}}"
    yield "]}\n"


def csv_chunks(view: ReachView) -> Iterator[str]:
    """One line per (source, destination) pair: ``from,to`` then ``true``/``false`` for each
    probe (columns named like ``80/TCP``)."""
    yield ",".join(["from", "to", *(str(p) for p in view.probes)]) + "\n"
    matrices = [view.reach.matrix(p) for p in view.probes]
    for src in view.sources:
        rows = [view.row(m, src) for m in matrices]
        lines = []
        for j, t in enumerate(view.targets):
            marks = ",".join("true" if r[j] else "false" for r in rows)
            lines.append(f"{src.key},{t.key},{marks}\n")
        yield "".join(lines)


# -- the truth table --------------------------------------------------------------------------


def fits_table(view: ReachView) -> bool:
    """Whether the truth table is small enough to print (else use the summary)."""
    return len(view.targets) <= MAX_TABLE_COLUMNS and len(view.sources) <= MAX_TABLE_ROWS


def _legend(colour: bool) -> str:
    return (
        f"{_paint(ALLOWED, 'green', colour)} allowed   {_paint(DENIED, 'red', colour)} denied   "
        f"{_paint(ITSELF, 'dim', colour)} the pod itself (always allowed)"
    )


def table(view: ReachView, colour: bool = False) -> str:
    """Truth tables, one per group of probes with the same verdicts: rows are sources,
    numbered columns are destinations."""
    numbers = {t.key: j + 1 for j, t in enumerate(view.targets)}
    width = len(str(len(view.targets)))
    same = [p.key for p in view.sources] == [p.key for p in view.targets]
    out: list[str] = []
    if not same:
        out.append("to:")
        out.extend(f"  {n:>{width}}  {key}" for key, n in numbers.items())
        out.append("")
    label = [
        (f"{numbers[s.key]:>{width}}  " if s.key in numbers else " " * (width + 2)) + s.key
        for s in view.sources
    ]
    name_width = max((len(x) for x in label), default=0)
    header = " " * (name_width + 2) + " ".join(f"{n:>{width}}" for n in numbers.values())
    for probes, matrix in probe_groups(view):
        heading = ", ".join(str(p) for p in probes)
        out.append(_paint(heading, "bold", colour) + "  (rows: from, columns: to)")
        out.append(header.rstrip())
        for s, name in zip(view.sources, label, strict=True):
            cells = []
            for t, ok in zip(view.targets, view.row(matrix, s), strict=True):
                if t.key == s.key:
                    cells.append(_paint(ITSELF.rjust(width), "dim", colour))
                elif ok:
                    cells.append(_paint(ALLOWED.rjust(width), "green", colour))
                else:
                    cells.append(_paint(DENIED.rjust(width), "red", colour))
            out.append(f"{name.ljust(name_width)}  " + " ".join(cells))
        out.append("")
    out.append(_legend(colour))
    return "\n".join(out) + "\n"


# -- the class-level summary ------------------------------------------------------------------


def _ranges(numbers: Sequence[int], name: Callable[[int], str]) -> str:
    """``C1 C3-C5 C9`` for [1, 3, 4, 5, 9]."""
    parts: list[str] = []
    start = prev = -2
    for n in [*numbers, -2]:
        if n == prev + 1:
            prev = n
            continue
        if start >= 0:
            parts.append(name(start) if start == prev else f"{name(start)}-{name(prev)}")
        start = prev = n
    return " ".join(parts)


def probe_groups(view: ReachView) -> list[tuple[list[Probe], ClassMatrix]]:
    """Probes with identical verdicts grouped (in probe order), each with its matrix."""
    groups: list[tuple[list[Probe], ClassMatrix]] = []
    seen: dict[tuple[int, ...], int] = {}
    for probe in view.probes:
        matrix = view.reach.matrix(probe)
        index = seen.setdefault(matrix.rows, len(groups))
        if index == len(groups):
            groups.append(([probe], matrix))
        else:
            groups[index][0].append(probe)
    return groups


def _capped(numbers: list[int], name: Callable[[int], str], limit: int, unit: str) -> str:
    """``C1 C3-C5 C9``, cut after ``limit`` items with a count of the rest."""
    numbers = sorted(numbers)
    text = _ranges(numbers, name)
    items = text.split(" ")
    if len(items) <= limit:
        return text
    shown = " ".join(items[:limit])
    last = items[limit - 1].split("-")[-1]
    rest = len([n for n in numbers if n > int(last[1:])])
    more = plural(rest, unit).replace(" ", " more ", 1)
    return f"{shown} ... and {more}"


def summary(view: ReachView, colour: bool = False, examples: int = 3, limit: int = 12) -> str:
    """Class-level summary: the classes (pods every policy treats alike), then per group of
    probes with equal verdicts, which classes reach which. Source classes with the same
    destinations share a line; long class lists are cut after ``limit`` items (the pod
    counts stay exact). Its size grows with classes, not with pod pairs."""
    order: dict[int, int] = {}  # engine class index -> summary number (1-based)
    members: dict[int, list[str]] = {}
    for p in view.pods:
        ci = view.class_index(p)
        order.setdefault(ci, len(order) + 1)
        members.setdefault(ci, []).append(p.key)
    source_count: dict[int, int] = {}
    first_source: dict[int, str] = {}
    for src in view.sources:
        ci = view.class_index(src)
        source_count[ci] = source_count.get(ci, 0) + 1
        first_source.setdefault(ci, src.key)
    target_keys = {t.key for t in view.targets}
    counts = view.target_counts()
    weights = _Weights(counts)
    target_mask = 0
    for ci in counts:
        target_mask |= 1 << ci
    width = len(f"C{len(order)}")

    def name(number: int) -> str:
        return f"C{number}"

    pairs = len(view.sources) * len(view.targets)
    out = [
        f"{plural(len(view.sources), 'pod')} (from) x {plural(len(view.targets), 'pod')} (to) "
        f"in {plural(len(order), 'class')}: the pods of a class are treated alike by every "
        "policy",
        "probes: " + (", ".join(str(p) for p in view.probes) or "none"),
        "",
        "classes:",
    ]
    count_width = len(plural(max((len(m) for m in members.values()), default=0), "pod"))
    for ci, number in order.items():
        keys = members[ci]
        shown = ", ".join(keys[:examples])
        more = f" and {len(keys) - examples:,} more" if len(keys) > examples else ""
        out.append(
            f"  {name(number).ljust(width)}  {plural(len(keys), 'pod').ljust(count_width)}  "
            f"{shown}{more}"
        )
    sources = sorted(first_source, key=order.__getitem__)
    for probes, matrix in probe_groups(view):
        allowed = view.allowed_pairs(matrix)
        share = f" ({100 * allowed / pairs:.0f}%)" if pairs else ""
        out.append("")
        out.append(
            _paint(", ".join(str(p) for p in probes), "bold", colour)
            + f": {allowed:,} of {pairs:,} pairs allowed{share}"
        )
        groups: dict[tuple[str, int, int], list[int]] = {}
        for s in sources:
            considered = target_mask
            if len(members[s]) == 1:
                # A one-pod class "reaching itself" says nothing: a pod always does.
                considered &= ~(1 << s)
            reached = matrix.rows[s] & considered
            others = weights.total(reached)
            if reached >> s & 1 and first_source[s] in target_keys:
                others -= 1
            if not reached:
                key = ("none", 0, 0)
            elif reached == considered:
                key = ("all", 0, others)
            else:
                key = ("some", reached, others)
            groups.setdefault(key, []).append(s)
        for (kind, reached, others), group in groups.items():
            if kind == "none":
                text = _paint("none", "red", colour)
            elif kind == "all":
                text = _paint("all", "green", colour)
            else:
                numbers = [order[d] for d in bit_indices(reached)]
                text = _capped(numbers, name, limit, "class")
            who = _capped([order[s] for s in group], name, limit, "class")
            if len(group) > 1:
                who += f" ({plural(sum(source_count[s] for s in group), 'pod')})"
            out.append(f"  {who} -> {text}  ({plural(others, 'pod')} each)")
    out.append("")
    out.append(
        "C1 -> C2: every pod of C1 may connect to every pod of C2 (C1 -> C1: to the other pods "
        "of C1); (N pods each): how many destinations that is for one source, itself not "
        "counted. Use -o json or -o csv for every pair."
    )
    return "\n".join(out) + "\n"
