#!/usr/bin/env python3
"""Fails when a module of the given crates reaches up: a cycle of imports
between modules, a file of the export layer naming the serve layer, or a
room of the export layer naming what its rule forbids.

    python3 scripts/module_cycles.py core/src runtime/src macros/src

A module is a file (`a.rs`, or `a/mod.rs` for the folder). Every path that
starts at `crate::` or `super::` is an import of the module it names, the
deepest one that exists; `#[cfg(test)]` code and `tests.rs` files are left
out.
"""
import pathlib
import re
import sys

# Layers inside one crate, lowest first: a module may name only its own
# layer and those before it.
LAYERS = {"runtime/src": ["export", "serve"]}

# Rooms inside a layer: modules under a room's prefix may name only the
# listed prefixes ("only"), or none of them ("never").
ROOMS = {
    "runtime/src": [
        # The configuration depends on nothing above it: itself, the
        # exporter door and URLs.
        (("export", "config"), "only", [("export", "config"), ("export", "exporter"), ("export", "failure"), ("export", "url")]),
        # The OTLP transport never reaches into the pipeline.
        (("export", "otlp"), "never", [("export", "pipeline")]),
    ]
}

PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
GROUP = re.compile(r"\buse\s+(crate|super)::\{([^}]*)\}")


def module_files(src):
    modules = {}
    for file in sorted(src.rglob("*.rs")):
        parts = list(file.relative_to(src).with_suffix("").parts)
        # Binaries, and unit tests moved beside their module (`a/tests.rs`).
        if parts[0] in ("bin", "tests") or parts[-1] == "tests":
            continue
        if parts[-1] == "mod" or parts in (["lib"], ["main"]):
            parts = parts[:-1]
        modules[tuple(parts)] = file
    return modules


def deepest(modules, path):
    for length in range(len(path), 0, -1):
        if tuple(path[:length]) in modules:
            return tuple(path[:length])
    return None


def imports(modules, module, text):
    text = text.split("#[cfg(test)]")[0]
    named = []
    for start, rest in PATH.findall(text):
        named.append((start, [p for p in rest.split("::") if p]))
    for start, items in GROUP.findall(text):
        for item in items.split(","):
            named.append((start, [p for p in item.strip().split("::") if p.isidentifier()]))
    found = set()
    for start, path in named:
        base = [] if start == "crate" else list(module[:-1])
        target = deepest(modules, base + path)
        if target not in (None, (), module):
            found.add(target)
    return found


def strongly_connected(graph):
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(group)

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def main(roots):
    problems = []
    count = 0
    for root in roots:
        src = pathlib.Path(root)
        modules = module_files(src)
        graph = {m: imports(modules, m, f.read_text()) for m, f in modules.items()}
        count += len(graph)
        name = lambda m: "::".join(m) or "crate"
        for group in strongly_connected(graph):
            if len(group) > 1:
                problems.append(f"{root}: cycle: {' -> '.join(sorted(map(name, group)))}")
        layers = LAYERS.get(root.rstrip("/"), [])
        for module, targets in graph.items():
            if not module or module[0] not in layers:
                continue
            for target in targets:
                if target and target[0] in layers and layers.index(target[0]) > layers.index(module[0]):
                    problems.append(f"{root}: {name(module)} reaches up to {name(target)}")
        for room, rule, prefixes in ROOMS.get(root.rstrip("/"), []):
            for module, targets in graph.items():
                if module[: len(room)] != room:
                    continue
                for target in targets:
                    listed = any(target[: len(prefix)] == prefix for prefix in prefixes)
                    if listed != (rule == "only"):
                        problems.append(f"{root}: {name(module)} names {name(target)}, outside its room's rule")
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem{'' if len(problems) == 1 else 's'} in {count} modules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
