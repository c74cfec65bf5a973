"""The README's snippets are the examples' marked regions, so the README shows what the tests run."""

import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def snippet(path: str) -> str:
    text = (ROOT / path).read_text()
    body = text.split("README-SNIPPET-START", 1)[1].split("\n", 1)[1]
    return textwrap.dedent(body.split("README-SNIPPET-END", 1)[0].rsplit("\n", 1)[0])


def test_readme_snippets_are_the_examples():
    readme = (ROOT / "README.md").read_text()
    blocks: dict[str, list[str]] = {}
    for lang, body in re.findall(r"```(rust|python|js)\n(.*?)```", readme, re.S):
        blocks.setdefault(lang, []).append(body.strip())
    assert blocks["rust"] == [snippet(f"examples/{n}.rs").strip() for n in ("quickstart", "stack", "swarm", "discovery", "proxy")]
    assert blocks["python"] == [snippet(f"examples/python/{n}.py").strip() for n in ("quickstart", "stack", "swarm", "discovery", "proxy")]
    assert blocks["js"] == [snippet(f"examples/node/{n}.js").strip() for n in ("quickstart", "stack", "swarm", "discovery", "proxy")]


def test_readme_commands_exist():
    readme = (ROOT / "README.md").read_text()
    for script in re.findall(r"^bash (scripts/\S+)", readme, re.M):
        assert (ROOT / script).exists(), script
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
