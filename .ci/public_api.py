#!/usr/bin/env python3
"""Lists cartwright's public API from rustdoc's JSON, one item per line.

Usage: public_api.py <crate.json>  (prints the listing on stdout)

`.ci/public-api` builds the JSON and compares the listing with the committed
`public-api.txt`, so every change to the public API shows up in review.
Each public path is listed with its kind and signature; structs and enums
with their public fields and variants, `#[non_exhaustive]` where set;
inherent methods with their signatures; trait implementations by name
(auto traits and blanket implementations are left out).
"""

import json
import sys

doc = json.load(open(sys.argv[1]))
index = doc["index"]
paths = doc["paths"]
out = set()


def item(i):
    return index.get(str(i))


public_path = {}


def full_path(i, fallback):
    """The shortest public path of a crate item, else the name as written."""
    if i in public_path:
        return public_path[i]
    return fallback.split("::")[-1]


def generic_args(args):
    if not args:
        return ""
    if "angle_bracketed" in args:
        parts = []
        for a in args["angle_bracketed"]["args"]:
            if "type" in a:
                parts.append(ty(a["type"]))
            elif "lifetime" in a:
                parts.append(a["lifetime"])
            elif "const" in a:
                parts.append(str(a["const"].get("expr", "_")))
        for c in args["angle_bracketed"].get("constraints", []):
            binding = c.get("binding", {})
            if "equality" in binding:
                value = binding["equality"]
                parts.append(c["name"] + " = " + (ty(value["type"]) if "type" in value else "_"))
            else:
                parts.append(c["name"] + ": " + bounds(binding.get("constraint", [])))
        return "<" + ", ".join(parts) + ">" if parts else ""
    if "parenthesized" in args:
        p = args["parenthesized"]
        s = "(" + ", ".join(ty(t) for t in p["inputs"]) + ")"
        if p.get("output"):
            s += " -> " + ty(p["output"])
        return s
    return ""


def path_of(p):
    return full_path(p["id"], p["path"]) + generic_args(p.get("args"))


def bounds(bs):
    parts = []
    for b in bs:
        if "trait_bound" in b:
            tb = b["trait_bound"]
            prefix = "?" if tb.get("modifier") == "maybe" else ""
            parts.append(prefix + path_of(tb["trait"]))
        elif "outlives" in b:
            parts.append(b["outlives"])
        elif "use" in b:
            parts.append("use<..>")
    return " + ".join(parts)


def ty(t):
    if t is None:
        return "()"
    if "resolved_path" in t:
        return path_of(t["resolved_path"])
    if "generic" in t:
        return t["generic"]
    if "primitive" in t:
        return t["primitive"]
    if "borrowed_ref" in t:
        r = t["borrowed_ref"]
        life = (r["lifetime"] + " ") if r.get("lifetime") else ""
        return "&" + life + ("mut " if r["is_mutable"] else "") + ty(r["type"])
    if "tuple" in t:
        return "(" + ", ".join(ty(x) for x in t["tuple"]) + ")"
    if "slice" in t:
        return "[" + ty(t["slice"]) + "]"
    if "array" in t:
        return "[" + ty(t["array"]["type"]) + "; " + t["array"]["len"] + "]"
    if "impl_trait" in t:
        return "impl " + bounds(t["impl_trait"])
    if "dyn_trait" in t:
        traits = [path_of(x["trait"]) for x in t["dyn_trait"]["traits"]]
        life = t["dyn_trait"].get("lifetime")
        return "dyn " + " + ".join(traits + ([life] if life else []))
    if "qualified_path" in t:
        q = t["qualified_path"]
        trait = q.get("trait")
        if trait:
            return "<" + ty(q["self_type"]) + " as " + path_of(trait) + ">::" + q["name"]
        return ty(q["self_type"]) + "::" + q["name"]
    if "raw_pointer" in t:
        r = t["raw_pointer"]
        return "*" + ("mut " if r["is_mutable"] else "const ") + ty(r["type"])
    if "function_pointer" in t:
        f = t["function_pointer"]
        return "fn(" + ", ".join(ty(x[1]) for x in f["sig"]["inputs"]) + ") -> " + ty(f["sig"]["output"])
    if "infer" in t:
        return "_"
    return json.dumps(t)


def generics(g):
    params = []
    for p in g.get("params", []):
        kind = p["kind"]
        if "lifetime" in kind:
            params.append(p["name"])
        elif "type" in kind:
            if kind["type"].get("is_synthetic"):
                continue
            b = bounds(kind["type"].get("bounds", []))
            params.append(p["name"] + (": " + b if b else ""))
        elif "const" in kind:
            params.append("const " + p["name"] + ": " + ty(kind["const"]["type"]))
    s = "<" + ", ".join(params) + ">" if params else ""
    preds = []
    for w in g.get("where_predicates", []):
        if "bound_predicate" in w:
            bp = w["bound_predicate"]
            preds.append(ty(bp["type"]) + ": " + bounds(bp["bounds"]))
    if preds:
        s += " where " + ", ".join(preds)
    return s


def signature(f):
    sig = f["sig"]
    header = f.get("header", {})
    prefix = ("async " if header.get("is_async") else "") + ("const " if header.get("is_const") else "")
    args = []
    for name, t in sig["inputs"]:
        if name == "self":
            rendered = ty(t)
            args.append({"Self": "self", "&Self": "&self", "&mut Self": "&mut self"}.get(rendered, "self: " + rendered))
        else:
            args.append(name + ": " + ty(t))
    out_ty = sig.get("output")
    ret = " -> " + ty(out_ty) if out_ty else ""
    return prefix + "fn", "(" + ", ".join(args) + ")" + ret, generics(f["generics"])


def attrs(it):
    return "#[non_exhaustive] " if any("non_exhaustive" in str(a) for a in it.get("attrs", [])) else ""


def emit_impls(path, impls):
    for i in impls:
        im = item(i)
        if not im:
            continue
        inner = im["inner"]["impl"]
        if inner.get("is_synthetic") or inner.get("blanket_impl"):
            continue
        trait = inner.get("trait")
        if trait:
            out.add(f"impl {path_of(trait)} for {path}")
            continue
        for m in inner["items"]:
            mi = item(m)
            if not mi or mi.get("visibility") != "public":
                continue
            if "function" in mi["inner"]:
                kw, sig, gen = signature(mi["inner"]["function"])
                out.add(f"pub {kw} {path}::{mi['name']}{gen}{sig}")
            elif "assoc_const" in mi["inner"]:
                out.add(f"pub const {path}::{mi['name']}: {ty(mi['inner']['assoc_const']['type'])}")


def emit(i, path, seen):
    known = public_path.get(i)
    if known is None or (len(path), path) < (len(known), known):
        public_path[i] = path
    it = item(i)
    if it is None:
        out.add(f"pub use {path} (external)")
        return
    inner = it["inner"]
    kind = next(iter(inner))
    body = inner[kind]
    if kind == "module":
        if (i, path) in seen:
            return
        seen.add((i, path))
        out.add(f"pub mod {path}")
        for child in body["items"]:
            c = item(child)
            if not c or c.get("visibility") != "public":
                continue
            if "use" in c["inner"]:
                u = c["inner"]["use"]
                target = u.get("id")
                if u["is_glob"]:
                    t = item(target)
                    if t and "module" in t["inner"]:
                        for g in t["inner"]["module"]["items"]:
                            gi = item(g)
                            if gi and gi.get("visibility") == "public" and gi.get("name"):
                                emit(g, f"{path}::{gi['name']}", seen)
                    continue
                if target is None or item(target) is None:
                    out.add(f"pub use {path}::{u['name']} = {u['source']}")
                else:
                    emit(target, f"{path}::{u['name']}", seen)
            elif c.get("name"):
                emit(child, f"{path}::{c['name']}", seen)
    elif kind == "struct":
        gen = generics(body["generics"])
        sk = body["kind"]
        out.add(f"{attrs(it)}pub struct {path}{gen}")
        if "plain" in sk:
            for f in sk["plain"]["fields"]:
                fi = item(f)
                if fi and fi.get("visibility") == "public":
                    out.add(f"pub {path}::{fi['name']}: {ty(fi['inner']['struct_field'])}")
        elif "tuple" in sk:
            for n, f in enumerate(sk["tuple"]):
                fi = item(f) if f is not None else None
                if fi and fi.get("visibility") == "public":
                    out.add(f"pub {path}::{n}: {ty(fi['inner']['struct_field'])}")
        emit_impls(path, body["impls"])
    elif kind == "enum":
        out.add(f"{attrs(it)}pub enum {path}{generics(body['generics'])}")
        for v in body["variants"]:
            vi = item(v)
            vk = vi["inner"]["variant"]["kind"]
            if vk == "plain":
                out.add(f"{attrs(vi)}{path}::{vi['name']}")
            elif "tuple" in vk:
                fields = [ty(item(f)["inner"]["struct_field"]) for f in vk["tuple"] if f is not None]
                out.add(f"{attrs(vi)}{path}::{vi['name']}({', '.join(fields)})")
            elif "struct" in vk:
                fields = [f"{item(f)['name']}: {ty(item(f)['inner']['struct_field'])}" for f in vk["struct"]["fields"]]
                out.add(f"{attrs(vi)}{path}::{vi['name']} {{ {', '.join(fields)} }}")
        emit_impls(path, body["impls"])
    elif kind == "trait":
        b = bounds(body.get("bounds", []))
        out.add(f"pub trait {path}{generics(body['generics'])}" + (": " + b if b else ""))
        for m in body["items"]:
            mi = item(m)
            if not mi:
                continue
            if "function" in mi["inner"]:
                kw, sig, gen = signature(mi["inner"]["function"])
                provided = " (provided)" if mi["inner"]["function"].get("has_body") else ""
                out.add(f"{kw} {path}::{mi['name']}{gen}{sig}{provided}")
            elif "assoc_type" in mi["inner"]:
                out.add(f"type {path}::{mi['name']}")
            elif "assoc_const" in mi["inner"]:
                out.add(f"const {path}::{mi['name']}: {ty(mi['inner']['assoc_const']['type'])}")
    elif kind == "function":
        kw, sig, gen = signature(body)
        out.add(f"pub {kw} {path}{gen}{sig}")
    elif kind == "type_alias":
        out.add(f"pub type {path}{generics(body['generics'])} = {ty(body['type'])}")
    elif kind == "constant":
        out.add(f"pub const {path}: {ty(body['type'])}")
    elif kind == "static":
        out.add(f"pub static {path}: {ty(body['type'])}")
    elif kind in ("macro", "proc_macro"):
        out.add(f"pub macro {path}")
    else:
        out.add(f"pub {kind} {path}")


# First pass: every item's public paths, to name types by the shortest.
emit(doc["root"], "cartwright", set())
out.clear()
emit(doc["root"], "cartwright", set())
for line in sorted(out):
    print(line)
