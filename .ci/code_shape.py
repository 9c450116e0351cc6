#!/usr/bin/env python3
"""The project's shape rules that rustc and clippy do not check:

- no function longer than 100 lines in crates/*/src (a longer one is two ideas);
- no import circle between the source files of any crate (file A uses
  something of file B while B uses something of A).

Prints every offender and exits 1 if there is any. Run: .ci/code_shape.py
"""
import os
import re
import sys
from pathlib import Path

MAX_FN_LINES = 100
ROOT = Path(__file__).resolve().parent.parent
CIRCLE_FREE = [p.parent.name for p in sorted(ROOT.glob("crates/*/src"))]

FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")


def code_only(text):
    """`text` with comments, strings and char literals blanked out (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
            continue
        if text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
            continue
        raw = re.match(r'b?r(#*)"', text[i:i + 300])
        if raw and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            end = '"' + raw.group(1)
            j = text.find(end, i + raw.end())
            j = n if j < 0 else j + len(end)
            out.append(' ""' + "\n" * text.count("\n", i, j))
            i = j
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(' ""' + "\n" * text.count("\n", i, j))
            i = j
            continue
        ch = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'\n])'", text[i:i + 12])
        if ch:
            out.append("' '")
            i += ch.end()
            continue
        out.append(c)
        i += 1
    return "".join(out)


def long_functions(path):
    code = code_only(path.read_text())
    for m in FN.finditer(code):
        # The body opens at the first `{` or ends at `;` (a declaration only).
        k = m.end()
        while k < len(code) and code[k] not in "{;":
            k += 1
        if k >= len(code) or code[k] == ";":
            continue
        depth, j = 0, k
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        start = code.count("\n", 0, m.start()) + 1
        end = code.count("\n", 0, j) + 1
        if end - start + 1 > MAX_FN_LINES:
            yield start, m.group(1), end - start + 1


def module_of(src, path):
    """The module path of a source file, as a tuple (lib.rs and main.rs: ())."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


USE = re.compile(r"\buse\s+([^;]+);")
PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def use_targets(code, module, is_mod_file):
    """Modules of this crate that `code` (in `module`) refers to by path."""
    # Paths are relative to the file's own module: `super` is its parent.
    here = list(module)
    texts = [m.group(1) for m in USE.finditer(code)]
    # Paths written in place too (`crate::clock::now_secs()`).
    texts += [m.group(0) for m in PATH.finditer(code)]
    if is_mod_file:
        # Paths through a child module written in place (`tags::parse(..)`).
        for child in re.findall(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;", code):
            if re.search(r"(?<![:\w])" + child + r"::", code):
                texts.append(child)
    for text in texts:
        text = re.sub(r"\s+", "", text)
        for p in expand(text):
            segs = p.split("::")
            if segs[0] == "crate":
                base, segs = [], segs[1:]
            elif segs[0] == "super":
                base = list(here)
                while segs and segs[0] == "super":
                    base, segs = base[:-1], segs[1:]
            elif segs[0] == "self":
                base, segs = list(here), segs[1:]
            else:
                # `use child::X` from a parent: a module declared here
                # (`std::..` and other crates name no file of this one).
                candidate = tuple(here) + (segs[0],)
                yield candidate, segs[1:]
                continue
            yield tuple(base), segs


def expand(text):
    """`a::{b, c::{d}}` into `a::b`, `a::c::d`."""
    m = re.match(r"^(.*?)\{(.*)\}$", text)
    if not m:
        return [text]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [q for part in parts if part for q in expand(prefix + part)]


INLINE_MOD = re.compile(r"\bmod\s+[A-Za-z_][A-Za-z0-9_]*\s*\{")


def without_inline_modules(code):
    """`code` without the bodies of inline modules (`mod tests { .. }`):
    their `super` is the file itself, and tests may use what they test."""
    while True:
        m = INLINE_MOD.search(code)
        if not m:
            return code
        depth, j = 0, m.end() - 1
        while j < len(code):
            depth += code[j] == "{"
            depth -= code[j] == "}"
            if depth == 0:
                break
            j += 1
        code = code[: m.start()] + code[j + 1 :]


def import_circles(src):
    files = {}
    for path in sorted(src.rglob("*.rs")):
        files[module_of(src, path)] = path
    edges = {}
    for module, path in files.items():
        code = without_inline_modules(code_only(path.read_text()))
        is_mod_file = path.name in ("mod.rs", "lib.rs", "main.rs")
        targets = set()
        for base, segs in use_targets(code, module, is_mod_file):
            # The longest module path named that is a file of this crate.
            best = None
            for k in range(len(segs) + 1):
                candidate = tuple(base) + tuple(segs[:k])
                if candidate in files:
                    best = candidate
            if best is not None and best != module:
                targets.add(best)
        edges[module] = targets
    return [
        (a, b)
        for a in edges
        for b in edges[a]
        if a in edges.get(b, ()) and str(a) < str(b)
    ]


def main():
    problems = []
    for src in sorted(ROOT.glob("crates/*/src")):
        for path in sorted(src.rglob("*.rs")):
            for line, name, lines in long_functions(path):
                rel = path.relative_to(ROOT)
                problems.append(f"{rel}:{line}: fn {name} is {lines} lines (at most {MAX_FN_LINES})")
    for crate in CIRCLE_FREE:
        src = ROOT / "crates" / crate / "src"
        for a, b in import_circles(src):
            show = lambda m: "/".join(m) or "lib.rs"
            problems.append(f"crates/{crate}/src: {show(a)} and {show(b)} import each other")
    for p in problems:
        print(p)
    if problems:
        return 1
    print("code shape: no function over", MAX_FN_LINES, "lines; no import circle in", ", ".join(CIRCLE_FREE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
