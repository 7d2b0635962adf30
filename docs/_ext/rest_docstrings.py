"""A griffe extension that lets the docs site render the package's reST-flavoured
docstrings as Markdown, so the sources need no site-specific markup.

* roles (``:class:`X```, ``:func:`~a.b```, ``:meth:``, ``:mod:``, ``:data:``) become
  code spans (``~`` keeps the last dotted part, as Sphinx shows it);
* simple tables (columns framed by ``====  ====`` rules) become pipe tables;
* literal blocks (a paragraph ending in ``::`` and the indented block after it) become
  fenced code blocks, the ``::`` a ``:``.

``double backticks`` need nothing: they already are a Markdown code span.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(~?)([^`]+)`")
RULE = re.compile(r"^(\s*)(=+(?:\s+=+)+)\s*$")
LITERAL = re.compile(r"^(\s*)(.*?)\s*::$")


def _role_to_code(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


def _columns(rule: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", rule)]


def _cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    """Split a table line at the rule's column starts (the last column runs to the end)."""
    starts = [start for start, _ in spans] + [len(line) + 1]
    return [line[starts[i] : starts[i + 1]].strip() for i in range(len(spans))]


def _table(lines: list[str], indent: str, spans: list[tuple[int, int]]) -> list[str]:
    """A pipe table from the lines between a simple table's rules (continuation lines,
    whose first cell is blank, extend the row above)."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    for line in lines:
        if RULE.match(line):  # the rule under a header row
            header, rows = rows[0] if rows else None, rows[1:]
            continue
        cells = _cells(line[len(indent) :], [(s - len(indent), e) for s, e in spans])
        if rows and not cells[0]:
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells, strict=True)]
        elif any(cells):
            rows.append(cells)
    head = header or [" "] * len(spans)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(spans)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return [indent + line for line in out]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _fence_literals(lines: list[str]) -> list[str]:
    """Turn each ``...::`` paragraph end and the indented block after it into a fence."""
    out: list[str] = []
    position = 0
    while position < len(lines):
        line = lines[position]
        position += 1
        literal = LITERAL.match(line)
        if literal is None:
            out.append(line)
            continue
        indent, intro = literal.groups()
        out.append(f"{indent}{intro}:" if intro else "")
        start = position
        while position < len(lines) and not lines[position].strip():
            position += 1
        block_start = position
        while position < len(lines) and (
            not lines[position].strip() or _indent(lines[position]) > len(indent)
        ):
            position += 1
        block = lines[block_start:position]
        while block and not block[-1].strip():
            block.pop()
        if not block:  # no indented block: an ordinary paragraph after all
            position = start
            continue
        cut = min(_indent(b) for b in block if b.strip())
        out += ["", f"{indent}```", *(f"{indent}{b[cut:]}" for b in block), f"{indent}```", ""]
    return out


def rest_to_markdown(text: str) -> str:
    """``text`` with reST roles, simple tables and literal blocks rewritten as Markdown."""
    lines = _fence_literals(ROLE.sub(_role_to_code, text).split("\n"))
    out: list[str] = []
    position = 0
    while position < len(lines):
        opening = RULE.match(lines[position])
        closing = None
        if opening:
            rules = [i for i in range(position + 1, len(lines)) if RULE.match(lines[i])]
            # the table ends at the last rule before a blank line
            ends = [i for i in rules if "" not in [x.strip() for x in lines[position:i]]]
            closing = ends[-1] if ends else None
        if opening is None or closing is None:
            out.append(lines[position])
            position += 1
            continue
        spans = _columns(lines[position])
        out += _table(lines[position + 1 : closing], opening.group(1), spans)
        position = closing + 1
    return "\n".join(out)


class RestDocstrings(griffe.Extension):
    """Rewrites every docstring with :func:`rest_to_markdown` as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rest_to_markdown(obj.docstring.value)
