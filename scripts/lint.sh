#!/usr/bin/env bash
# lint.sh -- the codebase rules a compiler does not check (STYLE.md).
#
#   scripts/lint.sh [DIR]      (DIR defaults to <repo>/src)
#
# 1. Banned calls anywhere in src/: sprintf vsprintf strcpy strcat strtok atoi
#    atol gets system; raw malloc/calloc/realloc/free outside
#    src/base/mem.c (use ef_malloc & co).
# 2. Layering: gateway -> {platforms, nlp, store} -> base, never back or
#    sideways. Every project include is path-qualified ("base/log.h") and its
#    first component must be in ALLOW[layer]; a private header (*_int.h)
#    stays in its own folder. src/nlp includes no network or storage library
#    header; library headers stay in the layer that owns the library.
# 3. Platform names: no file in src/gateway names a platform outside the
#    adapter list and configuration bootstrap (EF_PLATFORM_FILES).
# Comments and string literals are ignored. Prints file:line: reason for each
# finding; exit status 1 when there is any.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=${1:-$REPO/src}

exec python3 - "$SRC" "$REPO" <<'EOF'
import os
import re
import sys

src, repo = sys.argv[1], sys.argv[2]

BANNED = ["sprintf", "vsprintf", "strcpy", "strcat", "strtok", "atoi", "atol", "gets", "system"]
RAW_ALLOC = ["malloc", "calloc", "realloc", "free"]
ALLOC_HOME = os.path.join("base", "mem.c")
NET_HEADERS = re.compile(r"^(libwebsockets|lws_|curl/|libpq|postgres|pg_|hiredis/|hiredis\.h|async\.h)")


def strip_c(text):
    """Blanks comments and string/char literals, keeping line breaks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c if j - i >= 2 else text[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def call_rx(names):
    # a call of the bare name: not a member (->x( / .x(), not part of a longer identifier
    return re.compile(r"(?<![\w.>])(" + "|".join(names) + r")\s*\(")


banned_rx = call_rx(BANNED)
alloc_rx = call_rx(RAW_ALLOC)
include_rx = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)

problems = []
ALLOW = {"base": {"base"}, "nlp": {"nlp", "base"}, "platforms": {"platforms", "base"},
         "store": {"store", "base"}, "gateway": {"gateway", "platforms", "nlp", "store", "base"}}
# The only gateway files that may name a platform: the compiled-in adapter
# list and the configuration bootstrap (environment -> default integrations).
PLATFORM_FILES = set(os.environ.get("EF_PLATFORM_FILES", "config.c bootstrap.c").split())
PLATFORM_NAMES = re.compile(r"(?i)telegram|whatsapp|wildberries|ozon|webchat")
CHECK_PLATFORM_NAMES = os.environ.get("EF_LINT_PLATFORM_NAMES", "1") == "1"

for root, _, files in os.walk(src):
    for f in sorted(files):
        if not f.endswith((".c", ".h")):
            continue
        path = os.path.join(root, f)
        rel = os.path.relpath(path, src)
        shown = os.path.relpath(path, repo) if path.startswith(repo) else path
        raw = open(path, encoding="utf-8", errors="replace").read()
        code = strip_c(raw)
        lines = code.split("\n")
        for ln, line in enumerate(lines, 1):
            if line.lstrip().startswith("#"):
                continue  # preprocessor lines (includes, macros that name, not call)
            for m in banned_rx.finditer(line):
                problems.append("%s:%d: banned call %s()" % (shown, ln, m.group(1)))
            if rel != ALLOC_HOME:
                for m in alloc_rx.finditer(line):
                    problems.append("%s:%d: raw %s(): use ef_%s() (src/base/mem.c)" %
                                    (shown, ln, m.group(1), m.group(1)))
        top = rel.split(os.sep)[0]
        for m in include_rx.finditer(raw):
            hdr = m.group(1)
            ln = raw.count("\n", 0, m.start()) + 1
            where = "%s:%d" % (shown, ln)
            if top == "nlp" and NET_HEADERS.match(hdr):
                problems.append("%s: src/nlp must not include <%s> (network/storage library)" % (where, hdr))
            if m.group(0).strip().endswith(">"):
                continue  # a system or library header
            first = hdr.split("/")[0]
            if "/" not in hdr:
                problems.append("%s: include \"%s\" is not path-qualified (\"layer/%s\")" % (where, hdr, hdr))
            elif first in ALLOW and first not in ALLOW.get(top, {top}):
                problems.append("%s: src/%s must not include %s (the direction is gateway -> "
                                "platforms/nlp/store -> base)" % (where, top, hdr))
            elif hdr.endswith("_int.h") and first != top:
                problems.append("%s: %s is private to src/%s" % (where, hdr, first))
        if CHECK_PLATFORM_NAMES and top == "gateway" and f not in PLATFORM_FILES:
            for ln, line in enumerate(lines, 1):
                mm = PLATFORM_NAMES.search(line)
                if mm:
                    problems.append("%s:%d: src/gateway names the platform '%s' outside the adapter list "
                                    "and configuration bootstrap" % (shown, ln, mm.group(0)))
                    break

# ---- file-level cycles inside a layer (ARCHITECTURE.md 3.4) ----------------
# File A of a layer depends on file B of the same layer when A's object uses
# a global symbol B's object defines (nm -A). A dependency cycle of any
# length between files of one layer is a problem. The objects come from the
# build folder EF_LINT_BUILD (default "build"); when none are built the check
# is skipped with a note. Objects whose source is gone are ignored.
def layer_cycles():
    import glob
    import subprocess
    build = os.environ.get("EF_LINT_BUILD", "build")
    bdir = build if os.path.isabs(build) else os.path.join(repo, build)
    found, n_objs = [], 0
    for layer in sorted(ALLOW):
        objs = sorted(o for o in glob.glob(os.path.join(bdir, "src", layer, "*.o"))
                      if os.path.exists(os.path.join(src, layer, os.path.basename(o)[:-2] + ".c")))
        if not objs:
            continue
        n_objs += len(objs)
        stale = [o for o in objs if os.path.getmtime(o) <
                 os.path.getmtime(os.path.join(src, layer, os.path.basename(o)[:-2] + ".c"))]
        if stale:
            print("lint: %d object(s) in %s/src/%s are older than their sources; the cycle check "
                  "reads them as built" % (len(stale), build, layer), file=sys.stderr)
        try:
            out = subprocess.run(["nm", "-A"] + objs, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            print("lint: cycle check skipped (nm: %s)" % e, file=sys.stderr)
            return None
        defs, uses = {}, {}
        for line in out.splitlines():
            path, _, rest = line.partition(":")
            f = os.path.basename(path)[:-2] + ".c"
            tok = rest.split()
            if len(tok) < 2:
                continue
            kind, sym = tok[-2], tok[-1]
            if kind == "U":
                uses.setdefault(f, set()).add(sym)
            elif kind.isupper():
                defs[sym] = f
        graph = {}
        for f, syms in uses.items():
            for sym in syms:
                g = defs.get(sym)
                if g and g != f:
                    graph.setdefault(f, {}).setdefault(g, sym)
        found += [(layer, c, graph) for c in strongly_connected(graph)]
    if n_objs == 0:
        print("lint: no objects under %s/src/: file-level cycle check skipped (build first, or set "
              "EF_LINT_BUILD)" % build, file=sys.stderr)
    return found

def strongly_connected(graph):
    """Tarjan: the components of more than one file, each sorted."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps

def cycle_path(graph, comp):
    """One cycle through the first file of comp, as 'a.c -(sym)-> b.c ...'."""
    start, inside = comp[0], set(comp)
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, {})):
            if w == start:
                hops = [v]
                while prev[hops[-1]] is not None:
                    hops.append(prev[hops[-1]])
                hops.reverse()
                hops.append(start)
                return " ".join("%s -(%s)->" % (a, graph[a][b]) for a, b in zip(hops, hops[1:])) + " " + start
            if w in inside and w not in prev:
                prev[w] = v
                queue.append(w)
    return " ".join(comp)

cycles = layer_cycles()
for layer, comp, graph in cycles or []:
    problems.append("src/%s: file-level cycle among %s: %s" %
                    (layer, ", ".join(comp), cycle_path(graph, comp)))

for p in problems:
    print(p)
if problems:
    print("lint: %d problem(s)" % len(problems), file=sys.stderr)
    sys.exit(1)
print("lint: ok")
EOF
