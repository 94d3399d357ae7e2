"""Letters rendered once for many senders and filled in per message.

Why: rendering a message's two templates with jinja2 cost 63 µs of CPU per
message (two contexts, autoescaping, a layout to inherit), the largest single
cost of a monthly run (measured in-process on 9,004 invitations, 2026-12-06).
Between the messages of one month only four values change per message or
per sender: the recipient's first name, the two links that carry the
invitation's token, and the sender's name. So a template pair is rendered
once per (kind, tone, custom message, month, expiry date shown, days left,
whether the recipient has a first name), with a marker in place of each of
those four values; the result is cut at the markers into a format string,
and each message is that string filled with its own values (HTML-escaped
where the template escaped the marker). The sender's name is one of them
because a reminder run has few messages per sender (12 on average in the
benchmark: a render per sender cost 66 µs per reminder).

That equals rendering the template for each message only while the template
treats the four values as opaque: it prints them (escaped or not, alone, in
a concatenation, through `e`, `escape`, `safe` or `string`) and tests only
whether they are set. `opaque_slots` checks that on the source of the
template and of every template it extends before the template is used this
way; anything else (another filter, a comparison, a loop, a macro, an
include, a `set`) and the composer renders every message with jinja2 as it
always did. A marker that does not come out whole from a render (a filter
block changed it) has the same effect.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from jinja2 import Environment, nodes
from markupsafe import escape

# The values that differ per recipient, in the order of Fill's arguments.
SLOTS = ("first_name", "form_url", "unsubscribe_url", "sender_name")
_OPAQUE_FILTERS = frozenset({"e", "escape", "safe", "string"})
# Anything that could run the template's output, or a slot's value, through
# code the check does not follow.
_UNCHECKED = (
    nodes.FilterBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.For,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.Assign,
    nodes.AssignBlock,
    nodes.With,
)


def _with_parents(node: nodes.Node) -> Iterator[tuple[nodes.Node, nodes.Node]]:
    for child in node.iter_child_nodes():
        yield child, node
        yield from _with_parents(child)


def _opaque_use(chain: Sequence[nodes.Node]) -> bool:
    """`chain` is a slot's Name and its ancestors, nearest first: is the
    value only printed (possibly escaped, concatenated) or tested for truth?"""
    child = chain[0]
    for parent in chain[1:]:
        if isinstance(parent, nodes.Output):
            return True  # printed: the marker lands in the output as it is, or escaped
        if isinstance(parent, nodes.Not):
            return True  # truthiness: the same for every name (a key of the cache)
        if isinstance(parent, nodes.If):
            return child is parent.test
        if isinstance(parent, nodes.CondExpr):
            if child is parent.test:
                return True  # truthiness: the same for every name (a key of the cache)
        elif isinstance(parent, nodes.Filter):
            if parent.name not in _OPAQUE_FILTERS or parent.args or parent.kwargs:
                return False
        elif not isinstance(parent, nodes.Concat | nodes.And | nodes.Or):
            return False
        child = parent
    return False


def _template_is_opaque(ast: nodes.Template) -> bool:
    parents: dict[int, nodes.Node] = {}
    for child, parent in _with_parents(ast):
        parents[id(child)] = parent
        if isinstance(child, _UNCHECKED):
            return False
    for name in ast.find_all(nodes.Name):
        if name.name not in SLOTS:
            continue
        if name.ctx != "load":
            return False
        chain: list[nodes.Node] = [name]
        while id(chain[-1]) in parents:
            chain.append(parents[id(chain[-1])])
        if not _opaque_use(chain):
            return False
    return True


def opaque_slots(env: Environment, name: str) -> bool:
    """Whether template `name` (and every template it extends) uses the
    slots only opaquely, so that a render with markers can stand for all."""
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        assert env.loader is not None
        source, _, _ = env.loader.get_source(env, current)
        ast = env.parse(source)
        if not _template_is_opaque(ast):
            return False
        for extends in ast.find_all(nodes.Extends):
            if not isinstance(extends.template, nodes.Const):
                return False  # a layout chosen at render time
            pending.append(str(extends.template.value))
    return True


class Markers:
    """One marker per slot, unique to this process: private-use characters
    (which `text.header_text` and `body_text` remove from any value, so no
    name can contain one), a random nonce, and `<`, which escaping turns into
    `&lt;`: the form found in the output says whether the template escaped it."""

    def __init__(self) -> None:
        nonce = secrets.token_hex(8)
        self.values = tuple(f"\ue000{index}{nonce}<\ue001" for index in range(len(SLOTS)))
        self._pattern = re.compile("\ue000([0-9])" + nonce + "(<|&lt;)\ue001")

    def format_string(self, rendered: str) -> str | None:
        """`rendered` cut at the markers into a format string whose field
        2*slot is the slot's value as it is and 2*slot+1 escaped; None when a
        marker did not come out whole."""
        pieces = self._pattern.split(rendered)
        out: list[str] = []
        for index, piece in enumerate(pieces):
            kind = index % 3
            if kind == 0:
                if "\ue000" in piece or "\ue001" in piece:
                    return None
                out.append(piece.replace("{", "{{").replace("}", "}}"))
            elif kind == 1:
                slot = int(piece)
            else:
                out.append("{" + str(2 * slot + (piece != "<")) + "}")
        return "".join(out)


@dataclass(frozen=True)
class Bodies:
    """A text and an HTML body with a field per slot (Markers.format_string)."""

    text: str
    html: str

    def fill(self, values: Sequence[str | None]) -> tuple[str, str]:
        fields: list[str] = []
        for value in values:
            if value is None:  # rendered as None: its marker is in neither body
                fields += ("", "")
            else:
                fields += (value, str(escape(value)))
        return self.text.format(*fields), self.html.format(*fields)
