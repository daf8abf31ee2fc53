"""Draw the link state diagram from `bybit_hybrid_core._link.TRANSITIONS` (h11's make-state-diagrams.py idea).

    python docs/make_state_diagram.py            # print the Mermaid diagram
    python docs/make_state_diagram.py --write    # rewrite it inside docs/architecture.md

`tests/test_docs.py::test_state_diagram_is_current` fails when the page and the table disagree, so the
diagram cannot drift from the code.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from bybit_hybrid_core._link import (
    TRANSITIONS,  # the internals, drawn: the one docs tool that reads a private face
)

PAGE = Path(__file__).with_name("architecture.md")
BEGIN, END = "<!-- state-diagram:begin -->", "<!-- state-diagram:end -->"


def mermaid() -> str:
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (state, event), new in TRANSITIONS.items():
        if state is new:
            continue  # self-loops (bytes, pongs, acks inside a state) would only clutter the picture
        edges[(state.name, new.name)].append(event.name)
    lines = ["```mermaid", "stateDiagram-v2", "    [*] --> IDLE"]
    for (src, dst), events in sorted(edges.items()):
        lines.append(f"    {src} --> {dst}: {' / '.join(sorted(events))}")
    lines.append("```")
    return "\n".join(lines)


def render(page: str) -> str:
    head, _, rest = page.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{mermaid()}\n{END}{tail}"


if __name__ == "__main__":
    if "--write" in sys.argv:
        PAGE.write_text(render(PAGE.read_text()))
    else:
        print(mermaid())
