#!/usr/bin/env python3
"""gen_rule_corpus.py - writes the seed corpus of fuzz_rule (fuzz/corpus/fuzz_rule/).

Rule documents (core/engine/eca.h) as deterministic CBOR, written with a
minimal encoder (python3 has no cbor module by default): valid rules
covering every trigger, operator, source filter, template form and the JS
fields, and a few malformed ones. Run from the repository root:

    python3 fuzz/gen_rule_corpus.py
"""
import os
import struct

def head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < (1 << (8 * struct.calcsize(fmt))):
            return bytes([major << 5 | ai]) + struct.pack(fmt, n)
    raise ValueError(n)

def enc(v):
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if v is None:
        return b"\xf6"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return head(3, len(b)) + b
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(enc(x) for x in v)
    if isinstance(v, dict):
        return head(5, len(v)) + b"".join(enc(k) + enc(x) for k, x in v.items())
    raise TypeError(v)

A = [{"action": "a", "target": 1}]
SEEDS = {
    "basic": {"name": "basic", "on": ["m"], "then": A},
    "ops": {"name": "ops", "on": ["m", "temp"], "when": {"all": [
        {"prop": "t", "op": "gt", "value": 20}, {"prop": "t", "op": "le", "value": 30.5},
        {"prop": "s", "op": "eq", "value": "on"}, {"prop": "s", "op": "ne", "value": "off"},
        {"prop": "n.x", "op": "eq", "value": [1, 2.5]}, {"prop": "t", "op": "ge", "value": 25.0},
        {"prop": "t", "op": "lt", "value": 100}, {"prop": "s", "op": "in", "value": ["on", 1]},
        {"prop": "n.y", "op": "exists", "value": False}, {"prop": "t", "op": "changed"}]},
        "then": A},
    "sources": {"name": "sources", "on": ["*"], "when": {"source": [1, 3, "@b", "@zz"]},
                "then": A},
    "templates": {"name": "tmpl", "description": "all placeholders", "on": ["m"], "then": [
        {"action": "n", "target": "{{event.source}}", "properties": {
            "t": "{{event.properties.t}}", "x": "{{event.properties.n.x}}",
            "msg": "{{event.type}} from {{event.source}} at {{event.time}}: {{event.properties.s}}",
            "r": "{{rule.name}}", "deep": [{"k": "{{event.properties.t}} C"}]}}]},
    "derived": {"name": "ping", "on": ["m", "alarm"], "then": [
        {"event": "alarm", "properties": {"from": "{{event.source}}"}},
        {"action": "a", "target": "@c"}]},
    "schedule": {"name": "every", "on": {"every": 60}, "then": [
        {"action": "beat", "target": 2, "properties": {"at": "{{event.time}}"}}]},
    "absent": {"name": "quiet", "on": {"absent": {"type": "hb", "source": [5, "@c", "*"],
                                                  "for": 30.0}},
               "then": [{"action": "ping", "target": "{{event.source}}",
                         "properties": {"since": "{{event.properties.since}}"}}]},
    "group_target": {"name": "grp", "enabled": False, "on": ["x"],
                     "when": {"source": "@z"}, "then": [{"action": "all", "target": "@z"}]},
    "refused": {"name": "ref", "on": ["m"], "then": [{"action": "refused", "target": 1},
                                                    {"action": "b", "target": 2}]},
    "missing": {"name": "miss", "on": ["m"], "then": [
        {"action": "a", "target": 1, "properties": {"v": "{{event.properties.nope}}"}}]},
    "js_if": {"name": "jsif", "on": ["m"], "if": "event.properties.t > 20", "then": A},
    "js_script": {"name": "jss", "on": ["m", "temp"], "script":
                  "state.n = (state.n || 0) + 1; if (state.n % 2) emit('a', 1, {n: state.n});"
                  " emit('g', '@c', {t: event.properties.t});",
                  "then": [{"action": "s", "target": 1, "properties": {"n": "{{state.n}}"}}]},
    "js_hostile": {"name": "hostile", "on": ["m"], "script": "for (;;) { state.x = [state.x]; }"},
    "js_syntax": {"name": "bad-js", "on": ["m"], "if": "event.properties.t >", "then": A},
    "bad_field": {"name": "bad", "on": ["m"], "tehn": A},
    "bad_target": {"name": "bad", "on": ["m"], "then": [{"action": "a", "target": "x"}]},
    "bad_placeholder": {"name": "bad", "on": ["m"], "then": [
        {"action": "a", "target": 1, "properties": {"x": "{{event.nope}}"}}]},
}

def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_rule")
    os.makedirs(out, exist_ok=True)
    for name, doc in SEEDS.items():
        with open(os.path.join(out, name + ".cbor"), "wb") as f:
            f.write(enc(doc))
    print(f"wrote {len(SEEDS)} seeds to {out}")

if __name__ == "__main__":
    main()
