#!/usr/bin/env python3
"""mcu/footprint.py - flash, RAM and stack of the Cortex-M builds of mcu/.

Reads cross build directories made by mcu/CMakeLists.txt (objects, .su and
.ci stack files, the client image and its link map, the portability probe)
and writes a plain-text report and a Markdown summary. Used by
scripts/mcu-footprint.sh; see mcu/README.md for what the figures mean.

  footprint.py --build build-mcu [--build build-mcu-small ...] \
               [--extra FILE] --out REPORT.txt --markdown SUMMARY.md

Exit status: 0 ok, 1 the portability check failed (a symbol our code needs
that is neither the platform API nor allowed libc/libgcc), 2 usage or tool
error.
"""
import argparse
import datetime
import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Library modules in report order; any other lib/*.c found in a build is
# reported after them (mcu/CMakeLists.txt compiles lib/*.c + crypto/util.c).
MODULE_ORDER = ["cbor", "coap", "coap_block", "cose", "oscore", "edhoc", "json", "batch",
                "status", "crypto/util"]
MODULES = list(MODULE_ORDER)  # extended by lib_objects() with new modules


def module_of(obj_basename):
    name = obj_basename[:-len(".c.obj")]
    return "crypto/util" if name == "util" else name

# Entry points of the stack analysis: (label, function).
STACK_ENTRIES = [
    ("EDHOC initiator: message_1", "cl_edhoc_message_1"),
    ("EDHOC initiator: process message_2", "cl_edhoc_process_message_2"),
    ("EDHOC initiator: message_3", "cl_edhoc_message_3"),
    ("OSCORE context derivation", "cl_oscore_ctx_init"),
    ("OSCORE protect request", "cl_oscore_protect_request"),
    ("OSCORE unprotect response", "cl_oscore_unprotect_response"),
    ("client: whole handshake", "cl_mcu_client_handshake"),
    ("client: protected POST /events", "cl_mcu_client_post_event"),
    ("firmware: Reset_Handler (peak)", "Reset_Handler"),
]
# Functions an indirect call may reach in the client image: the crypto
# provider table's entries (plat_*, the sizing shim here) and the client's
# EDHOC credential callback. The transport (plat_coap_exchange) is one too.
INDIRECT_TARGET_RE = re.compile(r"(^|:)(plat_[A-Za-z0-9_]+|peer_cred)$")


def die(msg):
    print("footprint: " + msg, file=sys.stderr)
    sys.exit(2)


def run(cmd):
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        die("%s failed: %s" % (" ".join(cmd), getattr(e, "stderr", "") or e))


def cache_value(build, key):
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                m = re.match(r"^%s:[A-Z]+=(.*)$" % re.escape(key), line)
                if m:
                    return m.group(1)
    except OSError:
        pass
    return None


# ------------------------------------------------------------------ objects

def section_sizes(obj):
    """text / rodata / data / bss bytes of an object (sections by name)."""
    out = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in run(["arm-none-eabi-size", "-A", "-d", obj]).splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        name, size = parts[0], int(parts[1])
        if name.startswith(".text"):
            out["text"] += size
        elif name.startswith(".rodata"):
            out["rodata"] += size
        elif name.startswith(".data"):
            out["data"] += size
        elif name.startswith(".bss") or name == "COMMON":
            out["bss"] += size
    return out


def read_su(path):
    """[(function, bytes, qualifier)] from a -fstack-usage file."""
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            fn = parts[0].rsplit(":", 1)[-1]
            rows.append((fn, int(parts[1]), parts[2]))
    return rows


def lib_objects(build):
    objs = {}
    for o in glob.glob(os.path.join(build, "CMakeFiles", "cloister_lib_mcu.dir", "**", "*.c.obj"),
                       recursive=True):
        objs[module_of(os.path.basename(o))] = o
    missing = [m for m in MODULE_ORDER if m not in objs]
    if missing:
        die("%s: no object for %s (build it first)" % (build, ", ".join(missing)))
    for m in sorted(objs):
        if m not in MODULES:
            MODULES.append(m)
    return objs


def undefined(obj_or_elf):
    return sorted({l.split()[-1] for l in run(["arm-none-eabi-nm", "-u", obj_or_elf]).splitlines()
                   if l.strip()})


# ------------------------------------------------------------------ link map

def classify_file(f):
    f = f.strip()
    m = re.search(r"libcloister_lib_mcu\.a\(([^)]+)\)$", f)
    if m:
        return "lib: " + module_of(m.group(1))
    if re.search(r"libc(_nano)?\.a\(|libg(_nano)?\.a\(|libnosys\.a\(", f):
        return "libc (newlib-nano)"
    if re.search(r"libgcc\.a\(", f):
        return "libgcc"
    base = os.path.basename(f)
    if base == "plat_crypto_table.c.obj":
        return "crypto provider table"
    if base == "sizing_shim.c.obj":
        return "sizing shim (no crypto, no radio)"
    if base in ("client.c.obj", "firmware_main.c.obj", "startup.c.obj"):
        return "app: " + base[:-len(".c.obj")] + ".c"
    if f == "":
        return "alignment padding"
    return "other: " + base


ALLOC_SECTIONS = {".isr_vector", ".text", ".ARM.extab", ".ARM.exidx", ".data", ".bss"}


def parse_map(path):
    """{category: {text, rodata, data, bss}} from a GNU ld map file."""
    cats = {}
    with open(path) as f:
        lines = f.read().splitlines()
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        die("%s: not a GNU ld map file" % path)
    out_sec = None
    pending = None
    entries = []  # (output section, address, size, input section, file)
    for line in lines[start + 1:]:
        m = re.match(r"^(\.[^\s]+)(\s+0x[0-9a-f]+\s+0x[0-9a-f]+.*)?$", line)
        if m:  # an output section
            out_sec = m.group(1)
            pending = None
            continue
        if pending is not None:
            m = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s*(.*)$", line)
            if m:
                entries.append((out_sec, int(m.group(1), 16), int(m.group(2), 16), pending,
                                m.group(3)))
            pending = None
            continue
        m = re.match(r"^ (\*fill\*|COMMON|\.[^\s]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s*(.*)$",
                     line)
        if m:
            entries.append((out_sec, int(m.group(2), 16), int(m.group(3), 16), m.group(1),
                            "" if m.group(1) == "*fill*" else m.group(4)))
            continue
        m = re.match(r"^ (COMMON|\.[^\s]+)$", line)
        if m:
            pending = m.group(1)

    # Merged string sections (.rodata.str1.1) overlap: the map gives their
    # sizes before merging. Count each byte once, for the first object.
    end = {}
    for out_sec, addr, size, in_name, fname in sorted(entries, key=lambda e: (e[0], e[1])):
        if size == 0 or out_sec not in ALLOC_SECTIONS:
            continue
        lo = max(addr, end.get(out_sec, 0))
        hi = addr + size
        end[out_sec] = max(end.get(out_sec, 0), hi)
        if hi <= lo:
            continue
        if out_sec == ".bss":
            kind = "bss"
        elif out_sec == ".data":
            kind = "data"
        elif out_sec == ".text" and not in_name.startswith(".rodata"):
            kind = "text"
        else:  # .rodata*, the vector table, unwind tables
            kind = "rodata"
        c = cats.setdefault(classify_file(fname), {"text": 0, "rodata": 0, "data": 0, "bss": 0})
        c[kind] += hi - lo
    return cats


def elf_totals(elf):
    """(text, data, bss) as arm-none-eabi-size (berkeley) reports them."""
    lines = run(["arm-none-eabi-size", "-B", elf]).splitlines()
    t, d, b = lines[1].split()[:3]
    return int(t), int(d), int(b)


def symbol_sizes(obj):
    sizes = {}
    for line in run(["arm-none-eabi-nm", "-S", obj]).splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


# ------------------------------------------------------------------ stack

def parse_ci(paths):
    """Call graph of -fcallgraph-info=su files: (frames, edges, dynamic)."""
    frames, edges, dynamic = {}, {}, set()
    node_re = re.compile(r'^node: \{ title: "([^"]+)" label: "([^"]*)"')
    edge_re = re.compile(r'^edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
    for p in paths:
        with open(p) as f:
            for line in f:
                m = node_re.match(line)
                if m:
                    title, label = m.group(1), m.group(2)
                    s = re.search(r"\\n(\d+) bytes \(([^)]*)\)", label)
                    if s:  # a definition (declarations have no size)
                        frames[title] = int(s.group(1))
                        if "dynamic" in s.group(2):
                            dynamic.add(title)
                    continue
                m = edge_re.match(line)
                if m:
                    edges.setdefault(m.group(1), []).append(m.group(2))
    return frames, edges, dynamic


def asm_frame(elf_disasm, fn):
    """Stack bytes a function without .su pushes (libc/libgcc assembly): an upper bound."""
    body = elf_disasm.get(fn)
    if body is None:
        return None
    total = 0
    for ins in body:
        m = re.search(r"\b(push|stmdb\s+sp!,)\s*\{([^}]*)\}", ins)
        if m:
            regs = 0
            for r in m.group(2).split(","):
                r = r.strip()
                rr = re.match(r"r(\d+)-r(\d+)", r)
                regs += int(rr.group(2)) - int(rr.group(1)) + 1 if rr else 1
            total += 4 * regs
            continue
        m = re.search(r"\bsub(w|\.w)?\s+sp,\s*(sp,\s*)?#(\d+)", ins)
        if m:
            total += int(m.group(3))
            continue
        m = re.search(r"\bstrd\s+\w+,\s*\w+,\s*\[sp,\s*#-(\d+)\]!", ins)
        if m:
            total += int(m.group(1))
    return total


def disassemble(elf):
    funcs, cur = {}, None
    for line in run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", elf]).splitlines():
        m = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if m:
            cur = funcs.setdefault(m.group(1), [])
            continue
        if cur is not None and line.strip():
            cur.append(line)
    return funcs


class StackModel:
    def __init__(self, ci_paths, elf):
        self.frames, self.edges, self.dynamic = parse_ci(ci_paths)
        self.disasm = disassemble(elf)
        self.linked = set(self.disasm)
        self.estimated = {}
        self.unknown = set()
        self.recursive = set()
        self.indirect = sorted(t for t in self.frames if INDIRECT_TARGET_RE.search(t)
                               and self.short(t) in self.linked)
        self.memo = {}

    @staticmethod
    def short(t):
        return t.rsplit(":", 1)[-1]

    def frame(self, t):
        if t in self.frames:
            return self.frames[t]
        name = self.short(t)
        if name not in self.estimated:
            est = asm_frame(self.disasm, name)
            if est is None:
                self.unknown.add(name)
                est = 0
            self.estimated[name] = est
        return self.estimated[name]

    def callees(self, t):
        out = []
        for c in self.edges.get(t, []):
            if c == "__indirect_call":
                out.extend(self.indirect)
            else:
                out.append(c)
        return out

    def deepest(self, t, path=()):
        """(bytes, chain) of the deepest call chain from t."""
        if t in path:
            self.recursive.add(self.short(t))
            return 0, []
        if t in self.memo:
            return self.memo[t]
        best, chain = 0, []
        for c in set(self.callees(t)):
            d, ch = self.deepest(c, path + (t,))
            if d > best:
                best, chain = d, ch
        res = (self.frame(t) + best, [(self.short(t), self.frame(t))] + chain)
        if not path or t not in path:
            self.memo[t] = res
        return res


# ------------------------------------------------------------------ checks

def allow_patterns():
    pats = []
    with open(os.path.join(ROOT, "scripts", "symbol-allowlists", "protocol-lib.txt")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                pats.append(re.compile("^(?:%s)$" % line))
    return pats


def platform_api():
    with open(os.path.join(HERE, "plat_crypto.h")) as f:
        return set(re.findall(r"\b(plat_[a-z0-9_]+)\s*\(", f.read()))


# Compiler runtime helpers (libgcc): 64-bit and soft-float arithmetic, Thumb-1 switch tables.
LIBGCC_HELPER = re.compile(r"^(__aeabi_[a-z0-9]+|__gnu_thumb1_case_[a-z0-9]+)$")


def portability_check(build):
    """What the probe image (our code after --gc-sections, no libc/libgcc/shim) needs."""
    probe = os.path.join(build, "cloister-mcu-probe.elf")
    if not os.path.exists(probe):
        die("%s: no cloister-mcu-probe.elf" % build)
    api, pats = platform_api(), allow_patterns()
    needed = undefined(probe)
    res = {"api": [], "libc": [], "libgcc": [], "bad": []}
    for s in needed:
        if s in api:
            res["api"].append(s)
        elif s.startswith("cl_"):
            res["bad"].append(s)  # every cl_* must be defined inside the image
        elif any(p.match(s) for p in pats):
            res["libc"].append(s)
        elif LIBGCC_HELPER.match(s):
            res["libgcc"].append(s)
        else:
            res["bad"].append(s)
    return res


def archive_check(objs):
    """Every library object, before --gc-sections: [(module, symbol)] not allowed.

    Catches a host-only dependency in code the minimal client does not link
    (the probe only sees what survives --gc-sections)."""
    pats = allow_patterns()
    defined = set()
    for o in objs.values():
        for line in run(["arm-none-eabi-nm", "--defined-only", "-g", o]).splitlines():
            parts = line.split()
            if parts:
                defined.add(parts[-1])
    bad = []
    for mod, o in sorted(objs.items()):
        for sym in undefined(o):
            if sym.startswith("cl_"):
                ok = sym in defined
            else:
                ok = any(p.match(sym) for p in pats) or LIBGCC_HELPER.match(sym) is not None
            if not ok:
                bad.append((mod, sym))
    return bad


def libgcc_users(objs):
    """{helper: [module]} for the runtime helpers each library object references."""
    users = {}
    for mod, o in objs.items():
        for s in undefined(o):
            if LIBGCC_HELPER.match(s):
                users.setdefault(s, []).append(mod)
    return users


# ------------------------------------------------------------------ report

def kb(n):
    return "%.1f" % (n / 1024.0)


def table(rows, header, aligns=None):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    aligns = aligns or ["<"] + [">"] * (len(header) - 1)
    fmt = "  ".join("{:%s%d}" % (a, w) for a, w in zip(aligns, widths))
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*[str(c) for c in r]) for r in rows]
    return "\n".join(lines)


def md_table(rows, header):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def cat_order():
    return ["lib: " + m for m in MODULES] + APP_CATS


APP_CATS = [
    "app: client.c", "app: firmware_main.c", "app: startup.c", "crypto provider table",
    "sizing shim (no crypto, no radio)", "libc (newlib-nano)", "libgcc", "alignment padding"]
GROUPS = [
    ("our library (lib/)", lambda c: c.startswith("lib: ")),
    ("the app (client.c, firmware_main.c, startup.c)", lambda c: c.startswith("app: ")),
    ("crypto provider (table of platform functions)", lambda c: c == "crypto provider table"),
    ("libc (newlib-nano) + libgcc", lambda c: c in ("libc (newlib-nano)", "libgcc")),
    ("sizing shim (stands in for the platform: NOT crypto)",
     lambda c: c.startswith("sizing shim")),
    ("alignment padding", lambda c: c == "alignment padding"),
]


def analyse(build):
    cpu = cache_value(build, "CL_MCU_CPU") or "?"
    profile = cache_value(build, "CL_MCU_PROFILE") or "?"
    b = {"dir": os.path.relpath(build, ROOT), "cpu": cpu, "profile": profile,
         "label": "%s/%s" % (cpu, profile)}
    objs = lib_objects(build)
    b["objs"] = objs
    b["modules"] = {}
    for m in [m for m in MODULES if m in objs]:
        sz = section_sizes(objs[m])
        su = read_su(objs[m][:-len(".obj")] + ".su") if os.path.exists(
            objs[m][:-len(".obj")] + ".su") else []
        worst = max(su, key=lambda r: r[1]) if su else ("-", 0, "")
        b["modules"][m] = (sz, worst, [r for r in su if "static" not in r[2]])
    elf = os.path.join(build, "cloister-mcu-client.elf")
    mapf = os.path.join(build, "cloister-mcu-client.map")
    if not (os.path.exists(elf) and os.path.exists(mapf)):
        die("%s: no client image / map" % build)
    b["cats"] = parse_map(mapf)
    b["elf"] = elf_totals(elf)
    tot = {k: sum(c[k] for c in b["cats"].values()) for k in ("text", "rodata", "data", "bss")}
    if (tot["text"] + tot["rodata"], tot["data"], tot["bss"]) != b["elf"]:
        die("%s: map categories (%d+%d, %d, %d) do not add up to arm-none-eabi-size %s" % (
            build, tot["text"], tot["rodata"], tot["data"], tot["bss"], b["elf"]))
    sizes_obj = glob.glob(os.path.join(build, "CMakeFiles", "cloister_mcu_sizes.dir", "sizes.c.obj"))
    b["sizeof"] = {k[len("sizeof_"):]: v for k, v in symbol_sizes(sizes_obj[0]).items()
                   if k.startswith("sizeof_")} if sizes_obj else {}
    ci = glob.glob(os.path.join(build, "CMakeFiles", "cloister_lib_mcu.dir", "**", "*.ci"),
                   recursive=True)
    ci += glob.glob(os.path.join(build, "CMakeFiles", "cloister-mcu-client.dir", "*.ci"))
    sm = StackModel(ci, elf)
    b["stack"] = [(label, fn) + sm.deepest(fn) for label, fn in STACK_ENTRIES
                  if fn in sm.frames]
    b["stack_model"] = sm
    b["portability"] = portability_check(build)
    b["archive_bad"] = archive_check(objs)
    b["libgcc_users"] = libgcc_users(objs)
    return b


def cat_row(cats, name):
    c = cats.get(name, {"text": 0, "rodata": 0, "data": 0, "bss": 0})
    return c


def group_sum(cats, pred):
    s = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for name, c in cats.items():
        if pred(name):
            for k in s:
                s[k] += c[k]
    return s


def flash(c):
    return c["text"] + c["rodata"] + c["data"]


def ram(c):
    return c["data"] + c["bss"]


def report(builds, extra):
    out = []
    gcc = run(["arm-none-eabi-gcc", "--version"]).splitlines()[0]
    try:
        rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = "?"
    out.append("Cloister - footprint on Cortex-M (issue 9, item 4)")
    out.append("generated %s by scripts/mcu-footprint.sh at %s" % (
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), rev or "?"))
    out.append("toolchain: %s, newlib-nano (--specs=nano.specs --specs=nosys.specs)" % gcc)
    out.append("flags: -mcpu=<cpu> -mthumb -mfloat-abi=soft -Os -ffunction-sections "
               "-fdata-sections -std=c11, the top-level warning set with -Werror; "
               "image: -nostartfiles -Wl,--gc-sections, mcu/cortex-m.ld")
    out.append("flash = text + rodata + data (its load image); RAM = data + bss (static). "
               "Bytes unless marked KB (1024).")
    out.append("")
    out.append("CRYPTO IS NOT INCLUDED. The crypto provider is a table of platform functions "
               "(mcu/plat_crypto.h); in this image they are resolved by mcu/sizing_shim.c, which")
    out.append("returns CL_ERR_UNSUPPORTED and contains no primitive. A device adds its crypto "
               "library (P-256 ECDH, SHA-256/HMAC/HKDF, AES-CCM, DRBG) and its network stack:")
    out.append("NOT MEASURED here (no Cortex-M crypto library is packaged in Debian, and the "
               "repository's docs and shared references give no such figure).")
    for b in builds:
        out.append("")
        out.append("=" * 100)
        out.append("build %s (%s)" % (b["label"], b["dir"]))
        out.append("=" * 100)
        out.append("")
        out.append("Library, per module (whole objects, before --gc-sections):")
        rows, tot = [], {"text": 0, "rodata": 0, "data": 0, "bss": 0}
        for m in MODULES:
            sz, worst, dyn = b["modules"][m]
            for k in tot:
                tot[k] += sz[k]
            rows.append([m, sz["text"], sz["rodata"], sz["data"], sz["bss"], flash(sz), ram(sz),
                         "%s %d" % (worst[0], worst[1])])
        rows.append(["total", tot["text"], tot["rodata"], tot["data"], tot["bss"], flash(tot),
                     ram(tot), ""])
        out.append(table(rows, ["module", "text", "rodata", "data", "bss", "flash", "RAM",
                                "largest stack frame (function bytes)"],
                         ["<", ">", ">", ">", ">", ">", ">", "<"]))
        dyn = [(m, r) for m in MODULES for r in b["modules"][m][2]]
        out.append("stack frames not static: %s" % (
            ", ".join("%s:%s %d (%s)" % (m, r[0], r[1], r[2]) for m, r in dyn) or "none"))
        out.append("")
        out.append("Client image (cloister-mcu-client.elf: EDHOC initiator + OSCORE client), "
                   "after --gc-sections:")
        rows = []
        order = cat_order()
        for name in order + sorted(set(b["cats"]) - set(order)):
            if name not in b["cats"]:
                continue
            c = b["cats"][name]
            rows.append([name, c["text"], c["rodata"], c["data"], c["bss"], flash(c), ram(c)])
        t, d, bs = b["elf"]
        rows.append(["total (= arm-none-eabi-size: text %d, data %d, bss %d)" % (t, d, bs),
                     "", "", d, bs, t + d, d + bs])
        out.append(table(rows, ["part", "text", "rodata", "data", "bss", "flash", "RAM"]))
        out.append("")
        rows = []
        for gname, pred in GROUPS:
            c = group_sum(b["cats"], pred)
            rows.append([gname, flash(c), kb(flash(c)), ram(c)])
        out.append(table(rows, ["split", "flash", "KB", "RAM (static)"]))
        out.append("")
        if b["sizeof"]:
            out.append("Structures on the target (sizeof, from mcu/sizes.c): " + ", ".join(
                "%s %d" % (k, v) for k, v in sorted(b["sizeof"].items())))
        out.append("")
        out.append("Stack: deepest call chain per entry point (-fcallgraph-info=su; indirect "
                   "calls resolved to the provider table's functions and the client's callback):")
        for label, fn, depth, chain in b["stack"]:
            out.append("  %-38s %6d B  %s" % (label, depth, " > ".join(
                "%s %d" % (n, f) for n, f in chain)))
        sm = b["stack_model"]
        if sm.estimated:
            out.append("  frames of functions without .su (libc/libgcc assembly), estimated from "
                       "their pushes: " + ", ".join("%s %d" % kv for kv in sorted(
                           sm.estimated.items()) if kv[0] not in sm.unknown))
        if sm.unknown:
            out.append("  no frame known (counted 0): " + ", ".join(sorted(sm.unknown)))
        if sm.recursive:
            out.append("  recursion (cycle counted once): " + ", ".join(sorted(sm.recursive)))
        out.append("  NOT included: the crypto library's own stack below the provider table, and "
                   "exception entry (32 B per nested interrupt, 104 B with FP context).")
        peak = dict((fn, d) for _l, fn, d, _c in b["stack"]).get("Reset_Handler", 0)
        static_ram = b["elf"][1] + b["elf"][2]
        out.append("")
        out.append("RAM of the client: static %d B + peak stack %d B = %d B (%s KB), crypto "
                   "library state and stack not included." % (
                       static_ram, peak, static_ram + peak, kb(static_ram + peak)))
        p = b["portability"]
        out.append("")
        out.append("Portability probe %s (our objects after --gc-sections, no libc/libgcc/shim): "
                   "needs %d platform API functions, libc %s, libgcc %s%s" % (
                       b["label"], len(p["api"]), " ".join(p["libc"]) or "-", " ".join(p["libgcc"]) or "-",
                       ("; NOT ALLOWED: " + " ".join(p["bad"])) if p["bad"] else "; nothing else"))
        out.append("Library objects before --gc-sections (every module): %s" % (
            "all references allowed (protocol-lib allowlist, libgcc helpers, cl_* of the archive)"
            if not b["archive_bad"] else "NOT ALLOWED: " + ", ".join(
                "%s references %s" % ms for ms in b["archive_bad"])))
        if b["libgcc_users"]:
            out.append("libgcc helpers referenced by library objects (before --gc-sections): " +
                       "; ".join("%s (%s)" % (h, ", ".join(sorted(u))) for h, u in sorted(
                           b["libgcc_users"].items())))
    out.append("")
    out.append("=" * 100)
    out.extend(comparison(builds))
    if extra:
        out.append("")
        out.append("=" * 100)
        out.extend(extra)
    return "\n".join(out) + "\n"


def comparison(builds):
    """Lines comparing with the published C reference for MCUs quoted in issue 9."""
    lines = ["Against the published C reference for MCUs quoted in issue 9 (about 41 KB of flash "
             "and 5.6-6.7 KB of RAM, crypto included; KB taken as 1024 B):"]
    for b in builds:
        peak = dict((fn, d) for _l, fn, d, _c in b["stack"]).get("Reset_Handler", 0)
        shim = group_sum(b["cats"], lambda c: c.startswith("sizing shim"))
        fl = b["elf"][0] + b["elf"][1] - flash(shim)
        rm = b["elf"][1] + b["elf"][2] + peak
        lo, hi = 5.6 - rm / 1024.0, 6.7 - rm / 1024.0
        left_ram = ("%.1f..%.1f KB RAM" % (lo, hi) if lo >= 0 else
                    "no RAM (over the reference by %.1f..%.1f KB before any crypto)" % (
                        max(-hi, 0), -lo))
        lines.append("- %s: %.1f KB flash (the image less the sizing shim), %.1f KB RAM (static "
                     "%d B + peak stack %d B), crypto NOT included; left for crypto within the "
                     "reference's budget: %.1f KB flash, %s" % (
                         b["label"], fl / 1024.0, rm / 1024.0, b["elf"][1] + b["elf"][2], peak,
                         41 - fl / 1024.0, left_ram))
    lines.append("- not like for like: the reference's figures include its crypto; ours exclude "
                 "the crypto library's code, its key/state RAM and its own stack (not measured: "
                 "no Cortex-M crypto library is packaged in Debian and no figure for one is in "
                 "the repository's docs or shared references). Ours include newlib-nano's "
                 "memcpy & co., the start-up code and the client's three message buffers "
                 "(3 x CL_MCU_MSG_MAX).")
    return lines


def markdown(builds):
    md = []
    md.append("Cortex-M footprint (issue 9, item 4) - `scripts/mcu-footprint.sh`; arm-none-eabi-gcc "
              "12.2 `-Os -mthumb`, newlib-nano, `--gc-sections`. **Crypto primitives are not "
              "included** (the platform functions behind the provider table are a sizing shim).")
    md.append("")
    # per module: one flash/RAM column per build, plus the worst stack frame of the first build
    hdr = ["module"] + ["%s flash" % b["label"] for b in builds] + ["RAM (any build)"] + \
          ["largest frame (%s)" % builds[0]["label"]]
    rows = []
    for m in MODULES:
        r = [m] + [flash(b["modules"][m][0]) for b in builds]
        r.append(max(ram(b["modules"][m][0]) for b in builds))
        w = builds[0]["modules"][m][1]
        r.append("`%s` %d" % (w[0], w[1]))
        rows.append(r)
    rows.append(["**total**"] + ["**%d**" % sum(flash(b["modules"][m][0]) for m in MODULES)
                                 for b in builds] + [0, ""])
    md.append("Library per module (bytes, whole objects before `--gc-sections`; RAM = data+bss):")
    md.append("")
    md.append(md_table(rows, hdr))
    md.append("")
    md.append("Minimal client image (EDHOC initiator method 3 / suite 2 + OSCORE POST /events), "
              "flash / static RAM in bytes:")
    md.append("")
    hdr = ["part"] + [b["label"] for b in builds]
    rows = []
    for gname, pred in GROUPS:
        rows.append([gname] + ["%d / %d" % (flash(group_sum(b["cats"], pred)),
                                            ram(group_sum(b["cats"], pred))) for b in builds])
    rows.append(["**whole image**"] + ["**%d / %d**" % (b["elf"][0] + b["elf"][1],
                                                        b["elf"][1] + b["elf"][2]) for b in builds])
    stack = []
    for b in builds:
        d = dict((fn, dd) for _l, fn, dd, _c in b["stack"])
        stack.append(d)
    rows.append(["peak stack (Reset_Handler chain, excl. crypto)"] +
                ["%d" % s.get("Reset_Handler", 0) for s in stack])
    rows.append(["**RAM: static + peak stack**"] +
                ["**%d (%s KB)**" % (b["elf"][1] + b["elf"][2] + s.get("Reset_Handler", 0),
                                    kb(b["elf"][1] + b["elf"][2] + s.get("Reset_Handler", 0)))
                 for b, s in zip(builds, stack)])
    md.append(md_table(rows, hdr))
    md.append("")
    md.append("Deepest stack per step (bytes, crypto library's own stack excluded):")
    md.append("")
    hdr = ["step"] + [b["label"] for b in builds]
    rows = []
    for label, fn in STACK_ENTRIES:
        rows.append(["%s (`%s`)" % (label, fn)] + [str(s.get(fn, "-")) for s in stack])
    md.append(md_table(rows, hdr))
    md.append("")
    md.extend(comparison(builds))
    md.append("")
    return "\n".join(md) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="append", required=True, help="cross build directory")
    ap.add_argument("--extra", help="text file appended to the report (host check output)")
    ap.add_argument("--out", required=True, help="plain-text report")
    ap.add_argument("--markdown", required=True, help="Markdown summary")
    a = ap.parse_args()
    builds = [analyse(os.path.abspath(b)) for b in a.build]
    extra = []
    if a.extra:
        with open(a.extra) as f:
            extra = f.read().splitlines()
    with open(a.out, "w") as f:
        f.write(report(builds, extra))
    with open(a.markdown, "w") as f:
        f.write(markdown(builds))
    bad = [(b["label"], b["portability"]["bad"] + ["%s (in %s)" % (sym, mod)
                                                  for mod, sym in b["archive_bad"]])
           for b in builds if b["portability"]["bad"] or b["archive_bad"]]
    for label, syms in bad:
        print("footprint: %s: symbols outside the platform API and the allowed libc/libgcc "
              "functions: %s" % (label, " ".join(syms)), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
