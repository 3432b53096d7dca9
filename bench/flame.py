"""Collapsed stacks (py-spy ``--format raw``: ``frame;frame;…;leaf count`` a line) summarised and drawn.

Pure functions, no I/O beyond what the caller passes in: `parse` reads the lines, `summary` ranks the
frames by self samples (the leaf: where the CPU was) and by total samples (anywhere on the stack: what
the time was spent under) and groups self samples by package, `render_text` prints that, and `svg` draws
a flame graph of the same samples (one recording gives both, so the picture and the table agree).
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field

# py-spy writes a frame as "function (path/to/file.py:123)"; the line number is dropped when ranking so
# the frames of one function at different lines add up.
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_STDLIB = re.compile(r"/python3\.\d+/(?!site-packages/)(?P<rest>.+)$")
# py-spy --subprocesses puts the process (pid and command line) at the root of each stack; pids differ
# from run to run, so they are dropped and the runs add up.
_PROCESS = re.compile(r'^process \d+:".*"$')


def parse(lines: list[str] | str) -> Counter[tuple[str, ...]]:
    """Stacks (root first) → samples. Blank and malformed lines are skipped, process frames dropped."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(f for f in stack.split(";") if not _PROCESS.match(f))
        if frames:
            stacks[frames] += int(count)
    return stacks


def short_path(path: str) -> str:
    """A file as a reader knows it: ``sqlalchemy/orm/session.py``, ``shared/db.py``, ``<stdlib>/json/encoder.py``."""
    if "site-packages/" in path:
        return path.rsplit("site-packages/", 1)[1]
    m = _STDLIB.search(path)
    if m:
        return "<stdlib>/" + m.group("rest")
    for marker in ("/shared/", "/functions/", "/bench/", "/tests/"):
        if marker in path:
            return marker[1:] + path.rsplit(marker, 1)[1]
    return path


def frame_name(frame: str) -> str:
    """``func (file:line)`` → ``func (short file)``."""
    m = _FRAME.match(frame)
    if not m:
        return frame
    return f"{m.group('func')} ({short_path(m.group('file'))})"


def package(frame: str) -> str:
    """What a frame belongs to: the top-level package (``sqlalchemy``, ``pg8000``, ``flask``), the project
    module (``shared/db.py`` → ``shared.db``, a package's modules under its name: ``shared.lis``), or
    ``stdlib:json``."""
    m = _FRAME.match(frame)
    path = short_path(m.group("file")) if m else frame
    if path.startswith("<stdlib>/"):
        first = path.split("/")[1]
        return "stdlib:" + first.removesuffix(".py")
    parts = path.split("/")
    if parts[0] in ("shared", "functions", "bench", "tests") and len(parts) > 1:
        return f"{parts[0]}.{parts[1].removesuffix('.py')}"
    return parts[0].removesuffix(".py") if path.endswith(".py") or "/" in path else path


@dataclass
class Summary:
    samples: int
    by_self: list[tuple[str, int]] = field(default_factory=list)
    by_total: list[tuple[str, int]] = field(default_factory=list)
    by_package: list[tuple[str, int]] = field(default_factory=list)
    by_project: list[tuple[str, int]] = field(default_factory=list)

    def share(self, n: int) -> float:
        return n / self.samples if self.samples else 0.0


def summary(stacks: Counter[tuple[str, ...]], top: int = 25) -> Summary:
    """Rank frames (line numbers dropped) by self samples and by total samples (a frame counted once per
    stack even when it recurses), packages by self samples, and the project's own frames (shared/,
    functions/) by total samples: which use case the time was spent under."""
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for stack, n in stacks.items():
        if not stack:
            continue
        names = [frame_name(f) for f in stack]
        self_counts[names[-1]] += n
        packages[package(stack[-1])] += n
        for name in set(names):
            total_counts[name] += n
    return Summary(samples=sum(stacks.values()), by_self=self_counts.most_common(top),
                   by_total=total_counts.most_common(top), by_package=packages.most_common(top),
                   by_project=[(name, n) for name, n in total_counts.most_common()
                               if _is_project(name)][:top])


def _is_project(name: str) -> bool:
    return " (shared/" in name or " (functions/" in name


def render_text(title: str, s: Summary, notes: list[str] | None = None) -> str:
    """The summary as text: three ranked tables with each frame's share of all samples."""
    out = [title, f"samples: {s.samples}", *(notes or []), ""]
    for heading, rows in (("self (the frame on top of the stack: where the CPU was)", s.by_self),
                          ("total (the frame anywhere on the stack: the time spent under it)", s.by_total),
                          ("self samples by package", s.by_package),
                          ("the project's own frames by total samples", s.by_project)):
        out.append(f"## {heading}")
        out += [f"{s.share(n):6.1%} {n:7d}  {name}" for name, n in rows]
        out.append("")
    return "\n".join(out)


def markdown_row(title: str, s: Summary, n: int = 5) -> str:
    """One row of docs/performance.md's top-frames table: self frames, packages, the project's frames."""
    def cells(rows: list[tuple[str, int]]) -> str:
        return ", ".join(f"`{name}` {s.share(c):.1%}" for name, c in rows[:n])

    return f"| {title} ({s.samples} samples) | {cells(s.by_self)} | {cells(s.by_package)} | {cells(s.by_project)} |"


MARKDOWN_HEADER = ("| path | self: where the CPU was | by package (self) | under (the project's frames, total) |\n"
                   "|---|---|---|---|")


@dataclass
class _Node:
    name: str
    value: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(stacks: Counter[tuple[str, ...]]) -> _Node:
    root = _Node("all")
    for stack, n in stacks.items():
        root.value += n
        node = root
        for frame in stack:  # one box per function: its lines add up, as in the tables
            name = frame_name(frame)
            node = node.children.setdefault(name, _Node(name))
            node.value += n
    return root


def _color(name: str) -> str:
    # Warm colours as flamegraph.pl's "hot" palette, stable per package so a package reads as one hue.
    h = sum(map(ord, package(name) if "(" in name else name)) % 60
    return f"rgb(230,{90 + h * 2},{40 + h // 2})"


def svg(stacks: Counter[tuple[str, ...]], title: str, width: int = 1200, row: int = 16) -> str:
    """A flame graph (root at the bottom) of ``stacks``; each box's tooltip names the frame, its samples
    and share. Boxes narrower than 0.1 px are left out."""
    root = _tree(stacks)
    total = root.value or 1
    boxes: list[tuple[int, float, float, _Node]] = []

    def walk(node: _Node, depth: int, x: float) -> int:
        boxes.append((depth, x, node.value / total * width, node))
        deepest = depth
        for child in sorted(node.children.values(), key=lambda c: c.name):
            if child.value / total * width >= 0.1:
                deepest = max(deepest, walk(child, depth + 1, x))
            x += child.value / total * width
        return deepest

    depth = walk(root, 0, 0.0)
    height = (depth + 1) * row + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" '
             f'font-size="11"><rect width="100%" height="100%" fill="#f8f8f8"/>'
             f'<text x="4" y="16" font-size="14">{html.escape(title)} ({root.value} samples)</text>']
    for d, x, w, node in boxes:
        y = height - (d + 1) * row
        label = f"{node.name} ({node.value} samples, {node.value / total:.1%})"
        chars = int(w / 7)
        text = node.name if len(node.name) <= chars else (node.name[:chars - 2] + ".." if chars > 3 else "")
        parts.append(f'<g><title>{html.escape(label)}</title><rect x="{x:.1f}" y="{y}" width="{w:.1f}" '
                     f'height="{row - 1}" fill="{_color(node.name)}"/>'
                     + (f'<text x="{x + 2:.1f}" y="{y + row - 4}">{html.escape(text)}</text>' if text else "")
                     + "</g>")
    parts.append("</svg>")
    return "\n".join(parts)
