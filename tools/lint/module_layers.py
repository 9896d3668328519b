#!/usr/bin/env python3
"""Checks that the core's modules import each other in layers, with no cycle.

Lists every `crate::<module>` reference between the top-level modules of
src/ (a file src/x.rs or a folder src/x/ is module x; lib.rs, the root, is
left out), then fails if the module graph has a cycle or an edge that points
up the layer order below (the order written in src/lib.rs). References in
comments do not count; test modules (`#[cfg(test)] mod tests`) count like
any other code, so a test cannot hide a cycle either.

    tools/lint/module_layers.py [--src DIR] [--edges]

Exit status: 0 clean, 1 a cycle or an upward edge, 2 a module missing from
the layer list (add it where it belongs).
"""
import argparse
import os
import re
import sys

# Top (imports nothing of the crate) to bottom (may import everything above).
LAYERS = [
    ["error", "detail", "secret", "sync", "replay", "config"],
    ["crypto"],
    ["key_schedule", "wire", "epoch_tree"],
    ["os", "clock"],
    ["types"],
    ["metrics", "events"],
    ["blob"],
    ["maintenance"],
    ["context"],
    ["ffi"],
]
LEVEL = {m: i for i, layer in enumerate(LAYERS) for m in layer}

REF = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def module_of(src, path):
    rel = os.path.relpath(path, src)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def strip_comments(text):
    # Line comments (doc comments included) and block comments; string
    # literals in this crate never contain `crate::`.
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def edges_of(src):
    edges = {}
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            mod = module_of(src, path)
            if mod == "lib":
                continue
            code = strip_comments(open(path, encoding="utf-8").read())
            for target in REF.findall(code):
                if target != mod:
                    edges.setdefault((mod, target), set()).add(os.path.relpath(path, src))
    return edges


def find_cycle(nodes, edges):
    graph = {n: sorted({b for (a, b) in edges if a == n}) for n in nodes}
    state = {}
    stack = []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in graph.get(n, []):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = "done"
        return None

    for n in sorted(nodes):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=os.path.join(os.path.dirname(__file__), "..", "..", "src"))
    ap.add_argument("--edges", action="store_true", help="print every edge with the files behind it")
    args = ap.parse_args()
    src = os.path.normpath(args.src)
    edges = edges_of(src)
    nodes = {a for a, _ in edges} | {b for _, b in edges}
    unknown = sorted(n for n in nodes if n not in LEVEL)
    if unknown:
        print(f"module_layers: not in the layer list: {', '.join(unknown)}", file=sys.stderr)
        return 2
    status = 0
    for (a, b), files in sorted(edges.items(), key=lambda e: (LEVEL[e[0][0]], e[0])):
        up = LEVEL[b] > LEVEL[a]
        if args.edges or up:
            mark = "  UPWARD" if up else ""
            print(f"{a} -> {b}{mark}  ({', '.join(sorted(files))})")
        if up:
            status = 1
    cycle = find_cycle(nodes, edges)
    if cycle:
        print("module_layers: cycle: " + " -> ".join(cycle), file=sys.stderr)
        status = 1
    if status == 0:
        print(f"module_layers: {len(edges)} edges between {len(nodes)} modules, no cycle, none upward")
    return status


if __name__ == "__main__":
    sys.exit(main())
