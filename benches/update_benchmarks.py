"""Replaces (or appends) `## ` sections of BENCHMARKS.md; every benchmark script writes through this.
Usage: python benches/update_benchmarks.py < sections.md   (each section starts with its `## ` title line)"""

import sys
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEAD = (
    "# dockfleet benchmarks\n\nEvery figure here comes from a script in `benches/`, run as written below; machines are noisy, so\n"
    "the tables give medians and ratios measured side by side in one run.\n\n"
)


def update(section: str) -> None:
    title = section.splitlines()[0]
    prefix = title.split(":")[0] if ":" in title else title
    text = PATH.read_text() if PATH.exists() else HEAD
    start = next((i for i in range(len(text)) if text.startswith(prefix, i) and (i == 0 or text[i - 1] == "\n")), -1)
    if start >= 0:
        nxt = text.find("\n## ", start + len(prefix))
        text = text[:start] + section.rstrip("\n") + "\n" + (text[nxt:] if nxt != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    PATH.write_text(text)


def split(text: str) -> list[str]:
    """The `## ` sections of a benchmark's output, each with its title line."""
    parts = ("\n" + text).split("\n## ")
    return ["## " + p for p in parts[1:] if p.strip()]


if __name__ == "__main__":
    for section in split(sys.stdin.read()):
        update(section)
