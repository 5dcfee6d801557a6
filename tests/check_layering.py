#!/usr/bin/env python3
"""Fails when a source includes across the layers the README's Layout table
allows, or when the quoted includes form a cycle.

  core/abi/     the standard library only (and core/abi/)
  core/mm/      core/abi/, core/mm/, Boost.Intrusive; core/ROOM/*internal.h only
                from core/ROOM/*.cc
  core/procfs/  core/abi/, core/mm/ public headers, core/procfs/
  core/trace/   core/abi/, core/mm/mm_types.h, core/trace/
  preload/      core public headers, preload/, libc/kernel headers
  tools/        core public headers, tools/, abseil, system headers; never
                preload/ or core/mm/internal.h
  tests/, examples/  anything but core/*/*internal.h and preload/*.cc

core/ includes no system header but the C++ standard library's (its code
makes no syscalls; tests/check_core_symbols.sh checks the objects).
Usage: check_layering.py SOURCE_ROOT
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
# The C++ standard library headers core may use (the <cstdio>-style C
# headers and the freestanding ones; no <iostream>, <string>, ...).
CORE_STD = {
    "cstddef", "cstdint", "cstring", "cerrno", "climits", "new", "type_traits",
    "limits", "utility", "cstdlib",
}
SOURCES = (".cc", ".h", ".c")


def room(path):
    parts = path.split("/")
    if parts[0] == "core" and len(parts) > 2:
        return "core/" + parts[1]
    return parts[0]


def private_core(inc):
    """core/ROOM/*internal.h (core/mm/internal.h, core/procfs/text_internal.h,
    ...): the room's own."""
    return inc.startswith("core/") and inc.count("/") == 2 and inc.endswith("internal.h")


def public_core(inc):
    return inc.startswith("core/") and not private_core(inc)


def allowed(src, kind, inc):
    """None when src may include inc, else the reason."""
    r = room(src)
    if kind == "<":
        if r.startswith("core/"):
            if inc in CORE_STD:
                return None
            if r == "core/mm" and inc.startswith("boost/intrusive/"):
                return None
            return "core includes only the C++ standard library (and mm/ Boost.Intrusive)"
        if r == "preload" and (inc.startswith("boost/") or inc.startswith("absl/")):
            return "the preload depends on libc only"
        return None
    # Quoted includes: paths from the source root.
    if private_core(inc):
        if r == room(inc) and (src.endswith(".cc") or private_core(src)):
            return None
        return inc + " is for " + room(inc) + "/*.cc only"
    if r == "core/abi":
        return None if inc.startswith("core/abi/") else "core/abi/ includes only core/abi/"
    if r == "core/mm":
        return None if inc.startswith(("core/abi/", "core/mm/")) else \
            "core/mm/ includes only core/abi/ and core/mm/"
    if r == "core/procfs":
        return None if inc.startswith(("core/abi/", "core/mm/", "core/procfs/")) else \
            "core/procfs/ includes only core/abi/, core/mm/ and core/procfs/"
    if r == "core/trace":
        return None if (inc.startswith(("core/abi/", "core/trace/")) or
                        inc == "core/mm/mm_types.h") else \
            "core/trace/ includes only core/abi/, core/mm/mm_types.h and core/trace/"
    if r == "preload":
        return None if public_core(inc) or inc.startswith("preload/") else \
            "preload/ includes only core's public headers and preload/"
    if r == "tools":
        return None if public_core(inc) or inc.startswith(("tools/", "absl/")) else \
            "tools/ includes only core's public headers, tools/ and abseil"
    if inc.startswith("preload/") and inc.endswith(".cc"):
        return "no one includes a preload/*.cc"
    return None


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    os.chdir(root)
    files = []
    for top in ("core", "preload", "tools", "tests", "examples"):
        for d, _, names in os.walk(top):
            files += [os.path.join(d, n) for n in names if n.endswith(SOURCES)]
    errors = []
    graph = {}
    for f in sorted(files):
        text = open(f, encoding="utf-8", errors="replace").read()
        graph[f] = []
        for kind, inc in INCLUDE.findall(text):
            why = allowed(f, kind, inc)
            if why:
                errors.append(f"{f}: #include {kind}{inc}{'>' if kind == '<' else chr(34)}: {why}")
            if kind == '"' and os.path.exists(inc):
                graph[f].append(inc)
    # Include cycles among the quoted includes (DFS, colours).
    colour = {}
    stack = []

    def visit(n):
        colour[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if colour.get(m) == 1:
                errors.append("include cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
            elif colour.get(m) is None:
                visit(m)
        stack.pop()
        colour[n] = 2

    for n in sorted(graph):
        if colour.get(n) is None:
            visit(n)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"layering: {len(errors)} violation(s)", file=sys.stderr)
        return 1
    print(f"layering ok: {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
