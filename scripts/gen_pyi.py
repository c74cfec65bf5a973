#!/usr/bin/env python3
"""Keeps the data classes of bindings-python/python/dockfleet/_native.pyi in step with the `dto!` blocks
of bindings-python/src/*.rs: each block's class stub is generated from its fields and doc, and replaces
the class of the same name in the stub file (new classes are appended; place them by hand if you like).

    scripts/gen_pyi.py           rewrite the stub file
    scripts/gen_pyi.py --check   exit 1 if the stub file is not what it would write (run by the tests)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "bindings-python" / "src"
STUB = ROOT / "bindings-python" / "python" / "dockfleet" / "_native.pyi"

SCALARS = {
    "String": "str", "bool": "bool", "u8": "int", "u16": "int", "i32": "int", "u32": "int", "u64": "int", "i64": "int", "f64": "float", "Seconds": "float",
    "PathBuf": "Path", "std::path::PathBuf": "Path",
}


def split_top(text: str, sep: str = ",") -> list[str]:
    """Splits on `sep` outside angle brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += {"<": 1, ">": -1}.get(ch, 0)
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def py_type(rust: str) -> str:
    rust = rust.strip()
    m = re.fullmatch(r"(\w+)<(.*)>", rust)
    if m:
        outer, args = m.group(1), split_top(m.group(2))
        if outer == "Option":
            return f"{py_type(args[0])} | None"
        if outer == "Vec":
            return f"list[{py_type(args[0])}]"
        if outer in ("BTreeMap", "HashMap"):
            return f"dict[{py_type(args[0])}, {py_type(args[1])}]"
        if outer in ("BTreeSet", "HashSet"):
            return f"set[{py_type(args[0])}]"
        raise SystemExit(f"gen_pyi: no Python type for {rust}")
    return SCALARS.get(rust, rust.split("::")[-1])


DTO = re.compile(
    r"dto!\s*\{\s*((?:///[^\n]*\n\s*)*)(\w+)\s*=>\s*[\w:]+\s*\{(.*?)\}\s*\}", re.S
)


def classes() -> dict[str, str]:
    out = {}
    for f in sorted(SRC.glob("*.rs")):
        for m in DTO.finditer(f.read_text()):
            doc = " ".join(line.strip()[3:].strip() for line in m.group(1).strip().splitlines())
            name = m.group(2)
            fields = []
            for part in split_top(re.sub(r"///[^\n]*\n", "", m.group(3))):
                fname, ftype = part.split(":", 1)
                fields.append((fname.strip(), py_type(ftype)))
            lines = ["@final", f"class {name}:", f'    """{doc}"""', ""]
            lines += [f"    {n}: {t}" for n, t in fields]
            args = ", ".join(f"{n}: {t.replace('Path', '_StrPath')} = ..." for n, t in fields)
            lines.append(f"    def __new__(cls, *, {args}) -> Self: ...")
            lines.append("    def __eq__(self, other: object, /) -> bool: ...")
            out[name] = "\n".join(lines) + "\n"
    return out


def render(stub: str) -> str:
    lines = stub.splitlines(keepends=True)
    for name, text in classes().items():
        try:
            start = lines.index(f"class {name}:\n")
        except ValueError:
            lines += ["\n", text]
            continue
        if start > 0 and lines[start - 1] == "@final\n":
            start -= 1
        end = start + 2
        while end < len(lines) and (lines[end].startswith(" ") or lines[end] == "\n"):
            end += 1
        while lines[end - 1] == "\n":
            end -= 1
        lines[start:end] = [text]
    return "".join(lines)


def main() -> int:
    old = STUB.read_text()
    new = render(old)
    if "--check" in sys.argv:
        if old != new:
            print("_native.pyi is out of date with the dto! blocks: run scripts/gen_pyi.py", file=sys.stderr)
            return 1
        return 0
    STUB.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
