#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""openapi_check.py - a running server against its OpenAPI 3 description.

  openapi_check.py SPEC BASE [--mgmt BASE] [--src FILE...]

1. Every operation of SPEC is called (path parameters and bodies from the
   spec's examples; POSTs before GETs before DELETEs) and must answer one
   of its documented statuses, with the documented media type; JSON
   answers must parse. Operations tagged "management" go to --mgmt and
   must be refused (403) on BASE.
2. Every path the server's dispatch code names (string literals of the
   --src files that look like URL paths) must be covered by SPEC: equal
   to a path (templates match one segment), or a prefix or a suffix of
   one (the code matches "/v1/nodes/" then an ID, then "/heartbeat").
3. A path SPEC does not have answers 404.
Prints one "PASS|FAIL<TAB>name<TAB>why" line per check (the test turns
them into TAP); exit 1 on a failure.
"""
import json
import re
import sys
import urllib.error
import urllib.request

import yaml

n = 0
failed = 0


def tap(ok, name, why=""):
    global n, failed
    n += 1
    if not ok:
        failed += 1
    why = " ".join(str(why).split())[:400] if not ok else ""
    print("%s\t%s\t%s" % ("PASS" if ok else "FAIL", name, why), flush=True)


def call(base, method, path, body):
    data = None
    if body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def resolve(spec, obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = spec
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def url_of(spec, path, op):
    q = []
    for p in op.get("parameters", []):
        p = resolve(spec, p)
        if p["in"] == "path":
            path = path.replace("{%s}" % p["name"], str(p["example"]))
        elif p["in"] == "query" and p.get("required"):
            q.append("%s=%s" % (p["name"], p["example"]))
    return path + ("?" + "&".join(q) if q else "")


def main():
    args = sys.argv[1:]
    spec_path, base = args[0], args[1]
    mgmt, src = None, []
    i = 2
    while i < len(args):
        if args[i] == "--mgmt":
            mgmt = args[i + 1]
            i += 2
        elif args[i] == "--src":
            src = args[i + 1:]
            break
        else:
            sys.exit("usage: openapi_check.py SPEC BASE [--mgmt BASE] [--src FILE...]")
    spec = yaml.safe_load(open(spec_path))
    tap(str(spec.get("openapi", "")).startswith("3."), "%s: OpenAPI 3" % spec_path)
    order = {"post": 0, "get": 1, "delete": 2}
    ops = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            ops.append((order.get(method, 1), path, method, op))
    ops.sort(key=lambda o: o[0])
    for _, path, method, op in ops:
        m = method.upper()
        url = url_of(spec, path, op)
        body = None
        rb = op.get("requestBody")
        if rb:
            body = rb["content"]["application/json"].get("example", {})
        elif m == "POST":
            body = None
        target = base
        if "management" in op.get("tags", []):
            target = mgmt
            code, _, out = call(base, m, url, body)
            tap(code == 403, "%s %s refused on the inference listener" % (m, path),
                "got %d: %s" % (code, out[:200]))
        code, ctype, out = call(target, m, url, body)
        doc = {str(k): resolve(spec, v) for k, v in op["responses"].items()}
        ok = str(code) in doc
        why = "got %d (documented: %s): %s" % (code, ", ".join(doc), out[:300])
        if ok and doc[str(code)].get("content"):
            types = list(doc[str(code)]["content"])
            ok = any(ctype.startswith(t) for t in types)
            why = "got %s, documented %s" % (ctype, types)
            if ok and ctype.startswith("application/json"):
                try:
                    json.loads(out)
                except ValueError as e:
                    ok, why = False, "not JSON: %s" % e
        tap(ok, "%s %s -> %d as documented" % (m, url, code), why)
    # 2. the paths the dispatch code names
    rx = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in spec["paths"]]
    lits = set()
    for f in src:
        for lit in re.findall(r'"(/[A-Za-z0-9_./-]*[A-Za-z_/])"', open(f).read()):
            lits.add(lit)
    missing = []
    for lit in sorted(lits):
        if any(r.match(lit) for r in rx):
            continue
        if any(p.startswith(lit) or p.endswith(lit) for p in spec["paths"]):
            continue
        missing.append(lit)
    tap(bool(lits) and not missing,
        "every path named by the dispatch code (%d) is documented" % len(lits),
        "not in %s: %s" % (spec_path, " ".join(missing)))
    # 3. not documented: not served
    for p in ("/v1/no-such-path", "/v2/status"):
        code, _, _ = call(base, "GET", p, None)
        tap(code == 404, "GET %s (not documented) -> 404" % p, "got %d" % code)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
