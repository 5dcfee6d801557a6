#!/usr/bin/env python3
"""Traces end to end (suite 'tools'): `vmashadow run --trace` on real programs,
then replay, maps, report, plot and export on what was recorded.

One case per meson test:  trace_cli_test.py --vmashadow V --workload W ... CASE
Each case prints what it checked ("ok: ..."); a failure raises with details.
Exit 77 means skipped (e.g. no chromium for the render case), with the reason.
"""
import argparse
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

ARGS = None
TMP = None


def run(cmd, expect=None, env=None, **kw):
    e = dict(os.environ)
    e["TMPDIR"] = TMP
    if env:
        e.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=e, **kw)
    if expect is not None and p.returncode != expect:
        raise AssertionError(
            f"{' '.join(cmd)}: exit {p.returncode}, expected {expect}\n"
            f"stdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}")
    return p


def V(*args, **kw):
    return run([ARGS.vmashadow, *args], **kw)


def record(name, program, check="every", expect=0, env=None):
    trace = os.path.join(TMP, name)
    V("run", f"--check={check}", f"--trace={trace}", "--", *program, expect=expect, env=env)
    return trace


def traces_of(base):
    return sorted([base] + glob.glob(base + ".*"))


def replay_ok(trace, min_events=1, whole=True):
    """Replays with 0 mismatches; `whole`: the trace reaches the image's end
    (": OK"), else it stops early (": INCOMPLETE", said on stderr too)."""
    p = V("replay", trace, expect=0)
    m = re.search(r"replay: ([\d,]+) events in .*: " + ("OK" if whole else "INCOMPLETE"),
                  p.stdout)
    if not whole:
        assert "the trace stops before the process's end" in p.stderr, p.stderr
    assert m, p.stdout
    events = int(m.group(1).replace(",", ""))
    assert "mismatches 0" in p.stdout, p.stdout
    assert events >= min_events, f"{trace}: {events} events < {min_events}"
    return events


# --- the trace format, for planting faults (core/trace/trace_format.h) ---

CRC_TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    CRC_TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def varint(buf, pos):
    v, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, pos


def enc_varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def records(buf):
    """(offset, kind, payload_start, payload_len, total) of every record."""
    assert buf[:8] == b"VMASHTRC", "not a trace"
    pos, out = 16, []
    while pos < len(buf):
        kind = buf[pos]
        n, p = varint(buf, pos + 1)
        out.append((pos, kind, p, n, p + n + 4 - pos))
        pos = p + n + 4
    return out


def plant_kernel_result(buf, which=2):
    """Changes the kernel result of the `which`-th EVENT, keeping its model
    result (made explicit with flag kEventModelRetDiffers), and fixes the CRC.
    Returns the new trace and the record's offset."""
    evs = [r for r in records(buf) if r[1] == 5]
    off, kind, p, n, total = evs[which]
    payload = bytes(buf[p:p + n])
    flags, q1 = varint(payload, 1)
    q = q1
    for _ in range(6):
        _, q = varint(payload, q)
    kret_start = q
    kret_z, q = varint(payload, q)
    kret = (kret_z >> 1) ^ -(kret_z & 1)
    new = kret + 0x1000 if kret >= 0 else -22
    z = ((new << 1) ^ (new >> 63)) & ((1 << 64) - 1)
    if flags & 8:
        new_payload = payload[:kret_start] + enc_varint(z) + payload[q:]
    else:
        new_payload = (payload[:1] + enc_varint(flags | 8) + payload[q1:kret_start] +
                       enc_varint(z) + enc_varint(kret_z) + payload[q:])
    rec = bytes([kind]) + enc_varint(len(new_payload)) + new_payload
    rec += struct.pack("<I", crc32c(rec))
    return buf[:off] + rec + buf[off + total:], off


# --- cases ---

def case_record_pattern():
    trace = record("pattern", [ARGS.workload, "pattern"])
    replay_ok(trace, min_events=7)
    print("ok: pattern trace replays with 0 mismatches")


def case_record_integration():
    for sub, least in [("malloc", 3000), ("threads", 1000), ("forkexec", 20), ("signals", 300)]:
        base = record("itest_" + sub, [ARGS.integration, sub])
        files = traces_of(base)
        total = 0
        for t in files:
            total += replay_ok(t, min_events=0)
        assert replay_ok(base) >= least, base
        if sub == "forkexec":
            children = [f for f in files if re.search(r"\.\d+$", f)]
            assert len(children) >= 3, files
            execs = [f for f in files if ".exec" in f]
            assert execs, files
        print(f"ok: integration {sub}: {len(files)} trace files, {total} events, 0 mismatches")


def case_record_python3():
    base = record("python3", [ARGS.python, ARGS.python_workload])
    n = sum(replay_ok(t, min_events=0) for t in traces_of(base))
    assert n >= 100, n
    print(f"ok: python3: {len(traces_of(base))} trace files, {n} events, 0 mismatches")


def case_record_allocators():
    for lib in ARGS.allocator:
        name = os.path.basename(lib).split(".")[0]
        base = record("alloc_" + name, [ARGS.integration, "malloc"], env={"LD_PRELOAD": lib})
        n = sum(replay_ok(t, min_events=0) for t in traces_of(base))
        print(f"ok: integration malloc with {name}: {n} events, 0 mismatches")


def case_planted_mismatch():
    trace = record("plant", [ARGS.workload, "pattern"])
    buf = open(trace, "rb").read()
    bad, off = plant_kernel_result(buf)
    path = os.path.join(TMP, "planted")
    open(path, "wb").write(bad)
    p = V("replay", path, expect=1)
    assert f"mismatch at byte offset {off}" in p.stderr, p.stderr
    assert "model result differs from the kernel's" in p.stdout, p.stdout
    print(f"ok: a kernel result edited at byte offset {off} is reported, exit 1")


def case_truncated():
    trace = record("trunc", [ARGS.workload, "pattern"])
    buf = open(trace, "rb").read()
    recs = records(buf)
    # At a record boundary: a clean (shorter) trace.
    cut = recs[len(recs) // 2][0]
    path = os.path.join(TMP, "cut_boundary")
    open(path, "wb").write(buf[:cut])
    V("replay", path, expect=0)
    # Inside a record: an error naming the record's offset.
    off, _, _, _, total = recs[len(recs) // 2]
    path = os.path.join(TMP, "cut_inside")
    open(path, "wb").write(buf[:off + total // 2])
    p = V("replay", path, expect=3)
    assert f"truncated trace at byte offset {off}" in p.stderr, p.stderr
    p = V("replay", "--allow-truncated", path, expect=0)
    p = V("maps", path, "--at", "1000000", expect=3)
    assert f"byte offset {off}" in p.stderr, p.stderr
    print(f"ok: cut at a boundary replays; cut inside the record at {off} -> exit 3 with its offset")


def case_corrupt():
    trace = record("corrupt", [ARGS.workload, "pattern"])
    buf = bytearray(open(trace, "rb").read())
    recs = records(bytes(buf))
    off, _, p0, n, _ = recs[len(recs) // 2]
    buf[p0 + n // 2] ^= 0x40
    path = os.path.join(TMP, "corrupted")
    open(path, "wb").write(bytes(buf))
    for cmd in (["replay"], ["report"], ["maps", "--at", "100000"], ["export"],
                ["plot", "-o", os.path.join(TMP, "c.svg")]):
        p = V(*cmd, path)
        assert f"corrupt trace at byte offset {off}" in p.stderr, (cmd, p.stderr)
        assert p.returncode in (0, 2, 3), (cmd, p.returncode)
    p = V("replay", path, expect=3)
    assert "checksum mismatch" in p.stderr, p.stderr
    open(path, "wb").write(b"not a trace at all")
    p = V("replay", path, expect=3)
    assert "byte offset 0" in p.stderr and "no VMASHTRC magic" in p.stderr, p.stderr
    open(path, "wb").write(b"")
    V("replay", path, expect=3)
    V("replay", os.path.join(TMP, "does-not-exist"), expect=2)
    print(f"ok: a flipped bit in the record at {off} -> 'corrupt trace at byte offset {off}'")


def case_crash():
    trace = record("crash", [ARGS.workload, "crash"], expect=-9)
    n = replay_ok(trace, min_events=7, whole=False)
    print(f"ok: a process killed by SIGKILL leaves a trace of {n} events that replays "
          "(and is said to stop early)")


def case_maps():
    trace = record("maps", [ARGS.workload, "pattern"])
    p = V("replay", trace, expect=0)
    events = int(re.search(r"replay: ([\d,]+) events", p.stdout).group(1).replace(",", ""))
    last = V("maps", trace, "--at", str(events), expect=0).stdout
    first = V("maps", trace, "--at", "0", expect=0).stdout
    smaps = V("maps", trace, "--at", str(events), "--smaps", expect=0).stdout
    assert last.count("\n") > first.count("\n") - 2, (first, last)
    assert smaps.count("VmFlags:") == last.count("\n"), smaps
    # The A+C block (8 pages, rw) and B (4 pages, rw) follow one another.
    lines = last.splitlines()
    rw = [l for l in lines if re.match(r"[0-9a-f]+-[0-9a-f]+ rw-p 00000000 00:00 0\s*$", l)]
    sizes = [int(l.split()[0].split("-")[1], 16) - int(l.split()[0].split("-")[0], 16) for l in rw]
    assert 8 * 4096 in sizes and 4 * 4096 in sizes, (sizes, last)
    V("maps", trace, "--at", str(events + 1), expect=2)
    V("maps", trace, expect=2)
    print(f"ok: maps --at 0/{events} ({len(lines)} lines), --smaps adds one VmFlags line per VMA")


def case_report():
    trace = record("report", [ARGS.workload, "pattern"])
    text = V("report", trace, expect=0).stdout
    for section in ("VMA count over time", "Mappings:", "Churn per call site",
                    "Adjacent VMAs that did not merge", "Fragmentation", "brk vs mmap",
                    "Prediction accuracy"):
        assert section in text, (section, text)
    d = json.loads(V("report", "--json", trace, expect=0).stdout)
    assert d["events_by_call"]["mmap"] >= 7, d["events_by_call"]
    site = [s for s in d["call_sites"] if "make_mappings" in s["site"]]
    assert site and site[0]["by_call"].get("mmap") == 7, d["call_sites"]
    reasons = d["unmerged"]["by_reason"]
    assert reasons.get("different anon_vmas (both faulted before they met)") == 1, reasons
    assert reasons.get("offsets not contiguous (pgoff)") == 1, reasons
    assert any("vm_flags" in r for r in reasons), reasons
    vc = d["vma_count"]
    assert 0 < vc["start"] <= vc["peak"] and vc["end"] <= vc["peak"], vc
    assert vc["peak"] >= vc["start"] + 5, vc
    assert d["mappings"]["made"] >= 7, d["mappings"]
    f = d["fragmentation"]
    assert f["largest_gap"] > 0 and f["gaps"] > 0, f
    acc = d["accuracy"]
    assert acc["results"] == acc["results_hit"] and acc["replay_mismatches"] == 0, acc
    assert d["brk_vs_mmap"]["mmap_file"] == 2 and d["brk_vs_mmap"]["mmap_anon"] >= 5, d["brk_vs_mmap"]
    print(f"ok: report text has every section; JSON: make_mappings made 7 mmaps, "
          f"unmerged {reasons}, peak {vc['peak']} VMAs")


def png_has_content(path):
    """True when the PNG has pixels of at least two colours besides white."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w, h, ct, bd = 8, b"", 0, 0, 0, 0
    while pos < len(data):
        n, t = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if t == b"IHDR":
            w, h, bd, ct = struct.unpack(">IIBB", body[:10])
        elif t == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    bpp = {2: 3, 6: 4}.get(ct)
    assert bd == 8 and bpp, (bd, ct)
    stride = w * bpp
    colours = set()
    prev = bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pr) & 255
        prev = line
        if y % 4 == 0:
            for x in range(0, w, 4):
                px = tuple(line[x * bpp:x * bpp + 3])
                if px != (255, 255, 255):
                    colours.add(px)
    return len(colours)


def case_plot():
    trace = record("plot", [ARGS.integration, "malloc"])
    svg = os.path.join(TMP, "plot.svg")
    V("plot", trace, "-o", svg, expect=0)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg"), root.tag
    rects = root.findall(".//{http://www.w3.org/2000/svg}rect")
    titles = root.findall(".//{http://www.w3.org/2000/svg}title")
    assert len(rects) > 50 and titles, (len(rects), len(titles))
    html = os.path.join(TMP, "plot.html")
    V("plot", trace, "-o", html, "--html", expect=0)
    page = open(html).read()
    assert "<svg" in page and "VMA count over time" in page, page[:500]
    V("plot", trace, expect=2)
    print(f"ok: plot: well-formed SVG with {len(rects)} rects and {len(titles)} tooltips; HTML page")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("skip: no chromium (apt-get install chromium) to render the SVG")
        sys.exit(77)
    png = os.path.join(TMP, "plot.png")
    profile = tempfile.mkdtemp(dir=TMP)
    p = run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1540,900",
             "file://" + svg], timeout=120)
    assert os.path.exists(png), (p.returncode, p.stderr[-2000:])
    colours = png_has_content(png)
    assert colours >= 5, colours
    print(f"ok: chromium rendered it: {colours} distinct non-white colours in the screenshot")


def case_export():
    base = record("export", [ARGS.integration, "threads"])
    out = os.path.join(TMP, "perfetto.json")
    V("export", base, "--format=perfetto", "-o", out, expect=0)
    d = json.load(open(out))
    ev = d["traceEvents"]
    counters = [e for e in ev if e["ph"] == "C" and e["name"] == "VMAs"]
    slices = [e for e in ev if e["ph"] == "X"]
    tids = {e["tid"] for e in slices}
    assert counters and all("vmas" in e["args"] for e in counters), counters[:3]
    assert len(slices) >= 1000 and len(tids) >= 8, (len(slices), len(tids))
    assert all(e["dur"] >= 0 and e["ts"] >= 0 for e in slices)
    names = {e["name"] for e in slices}
    assert {"mmap", "munmap"} <= names, names
    assert any(e["ph"] == "M" and e["name"] == "thread_name" for e in ev)
    V("export", base, "--format=nope", expect=2)
    print(f"ok: perfetto JSON: {len(slices)} slices on {len(tids)} threads, {len(counters)} counter samples")


def case_usage():
    for cmd in ("replay", "maps", "report", "plot", "export"):
        V(cmd, expect=2)
        V(cmd, "--bogus", "x", expect=2)
        p = V(cmd, "--help", expect=0)
        assert p.stdout.startswith(f"Usage: vmashadow {cmd}"), p.stdout
    p = V("help", expect=0)
    for cmd in ("replay", "maps", "report", "plot", "export"):
        assert cmd in p.stdout
    V("replay", "--kernel-profile=9.99", os.path.join(TMP, "x"), expect=2)
    trace = record("usage", [ARGS.workload, "pattern"])
    p = V("replay", "--kernel-profile=9.99", trace, expect=2)
    assert "unknown kernel profile '9.99' (known: 6.12, 6.15, 6.17, 6.18, 6.18-fc)" in p.stderr, \
        p.stderr
    p = V("replay", "--kernel-profile=6.12", trace)
    assert p.returncode in (0, 1) and "replayed with 6.12" in p.stdout, p.stdout
    p = V("run", "--trace=/nonexistent-dir/t", "--", ARGS.workload, expect=2)
    assert "cannot write the trace" in p.stderr, p.stderr
    print("ok: usage errors exit 2, --help for every trace command, --kernel-profile checked")


def case_stale_files():
    base = os.path.join(TMP, "stale")
    # Files that look like traces but are not this tool's: never removed.
    for suffix in (".123", ".123.exec1", ".exec2", ".keep"):
        open(base + suffix, "w").write("not ours")
    # An existing FILE no manifest names is refused, not replaced.
    open(base, "w").write("not ours")
    p = V("run", f"--trace={base}", "--", ARGS.workload, "pattern", expect=2)
    assert "exists and is not a trace" in p.stderr, p.stderr
    assert open(base).read() == "not ours"
    os.unlink(base)
    record("stale", [ARGS.workload, "pattern"])
    first = os.stat(base).st_ino
    # The second run removes the first run's traces (named in its manifest).
    record("stale", [ARGS.workload, "pattern"])
    assert os.stat(base).st_ino != first or open(base, "rb").read(8) == b"VMASHTRC"
    for suffix in (".123", ".123.exec1", ".exec2", ".keep"):
        assert open(base + suffix).read() == "not ours", suffix
    assert os.path.exists(os.path.join(TMP, ".stale.vmashadow-manifest"))
    replay_ok(base)
    print("ok: an earlier run's traces are replaced through its manifest; look-alikes and an "
          "unknown FILE are kept")


def main():
    global ARGS, TMP
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmashadow", required=True)
    ap.add_argument("--workload", required=True)
    ap.add_argument("--integration", required=True)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--python-workload", default="")
    ap.add_argument("--allocator", action="append", default=[])
    ap.add_argument("case")
    ARGS = ap.parse_args()
    TMP = tempfile.mkdtemp(prefix="vmashadow-trace-")
    try:
        globals()["case_" + ARGS.case]()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
