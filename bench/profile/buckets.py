#!/usr/bin/env python3
"""Attributes the samples of `perf script -F comm,tid,ip,sym,dso --no-inline` to cost buckets.

usage: perf script -i DATA -F comm,tid,ip,sym,dso --no-inline | buckets.py KIND [UNITS] [US_PER_UNIT]
KIND: sender or echo (a label). With UNITS (posts or events)
and US_PER_UNIT (CPU per unit measured from /proc), prints µs per unit per bucket.
Each sample goes to one bucket:
- leaf in the kernel: "kernel: <syscall>" (the frame above do_syscall_64), page faults,
  or "kernel: other" (interrupts, scheduler);
- leaf in glibc's malloc/free family: "allocation (malloc/free)";
- else the first frame, from the leaf up, of a crate that owns work (library helpers such
  as core/alloc/std/http/bytes are skipped, so their time goes to whoever called them).
A secondary table gives, for kernel and allocation samples, the owner crate that made them.
"""
import collections
import re
import sys

MALLOC = re.compile(
    r"^(__libc_)?(malloc|free|cfree|calloc|realloc)(@.*)?$|^_int_(malloc|free|realloc|memalign)|"
    r"^malloc_consolidate|^unlink_chunk|^tcache_|^sysmalloc|^__libc_memalign|^_mid_memalign|"
    r"^posix_memalign|^alloc_perturb|^__rust_(alloc|dealloc|realloc)|^arena_"
)
SYSCALL = re.compile(r"__(x64|ia32)_sys_(\w+)|__do_sys_(\w+)")

OWNERS = [
    # (bucket, crate roots or symbol prefixes)
    ("SigV4 signing", ["aws_sigv4", "sha2", "hmac", "digest", "wsgw_aws::management_client::ManagementClient::sign"]),
    ("HTTP client (hyper, pool, smithy adapter)", ["hyper", "hyper_util", "aws_smithy_http_client", "tower", "want", "httparse", "aws_smithy_types", "aws_smithy_runtime_api", "aws_smithy_async", "http_body", "http_body_util", "h2"]),
    ("Runtime API client (lambda_runtime)", ["lambda_runtime", "lambda_runtime_api_client"]),
    ("tokio timers", ["tokio::time", "tokio::runtime::time"]),
    ("tokio I/O driver (epoll, mio)", ["tokio::runtime::io", "mio", "tokio::net", "tokio::io"]),
    ("tokio scheduling (tasks, wake-ups, park)", ["tokio"]),
    ("wsgw-aws own code (sink, management_client, Lambda glue)", ["wsgw_aws"]),
    ("wsgw-core broadcast / router", ["wsgw_core"]),
    ("serde / JSON", ["serde_json", "serde"]),
    ("tracing / logging", ["tracing", "tracing_core", "tracing_subscriber", "sharded_slab"]),
    ("example / bench main", ["echo", "wsgw_bench", "wsgw_memory"]),
    ("rustls / TLS", ["rustls", "aws_lc_rs", "aws_lc_sys", "rustls_native_certs"]),
    ("credentials", ["aws_credential_types", "aws_config"]),
]
SKIP_ROOTS = {
    "core", "alloc", "std", "http", "bytes", "hashbrown", "smallvec", "percent_encoding",
    "itoa", "ryu", "form_urlencoded", "futures_util", "futures_core", "futures", "pin_project",
    "pin_project_lite", "once_cell", "parking_lot", "parking_lot_core", "time", "fastrand",
    "async_trait", "foldhash", "chrono", "indexmap", "memchr", "slab",
}


def path_of(sym):
    """The first path of a Rust symbol: `<a::B as c::D>::f` → `a::B`."""
    s = sym
    while s.startswith("<"):
        s = s[1:]
    s = s.lstrip("&*").replace("dyn ", "").replace("mut ", "")
    while s.startswith("<"):
        s = s[1:]
    return re.split(r"[ <>,()\[\]]", s, 1)[0]


def owner(sym):
    if not sym or sym == "[unknown]":
        return None
    path = path_of(sym)
    for bucket, prefixes in OWNERS:
        for prefix in prefixes:
            if "::" in prefix and (sym.startswith(prefix) or path.startswith(prefix)):
                return bucket
    root = path.split("::", 1)[0]
    if root in SKIP_ROOTS:
        return None
    for bucket, prefixes in OWNERS:
        if root in prefixes:
            return bucket
    return None


def classify(frames):
    """frames: [(sym, dso)] leaf first → (bucket, who)"""
    leaf_sym, leaf_dso = frames[0]
    who = None
    for sym, dso in frames:
        if "kernel" in dso or "libc.so" in dso or "ld-linux" in dso:
            continue
        who = owner(sym)
        if who:
            break
    who = who or "other / unknown"
    if "kernel" in leaf_dso:
        syms = [sym for sym, _ in frames]
        if "do_syscall_64" in syms:
            i = syms.index("do_syscall_64") - 1
            while i > 0 and syms[i] in ("x64_sys_call", "__x64_sys_call"):
                i -= 1
            name = re.sub(r"^(__x64_sys_|__ia32_sys_|__do_sys_|__se_sys_|ksys_|__sys_|do_sys_)", "", syms[max(i, 0)])
            return "kernel: " + name, who
        if any("page_fault" in s for s in syms):
            return "kernel: page faults", who
        return "kernel: other (interrupts, scheduler)", who
    if "libc.so" in leaf_dso and MALLOC.search(leaf_sym) or MALLOC.search(leaf_sym):
        return "allocation (malloc/free)", who
    return who, who


def samples(stream):
    frames = []
    for line in stream:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                yield frames
            frames = []
            continue
        if not line.startswith((" ", "\t")):
            continue  # the sample's header (comm tid)
        m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", line)
        if m:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            frames.append((sym, m.group(2)))
    if frames:
        yield frames


def main():
    units = float(sys.argv[2]) if len(sys.argv) > 2 else None
    per_unit = float(sys.argv[3]) if len(sys.argv) > 3 else None
    buckets = collections.Counter()
    by_who = collections.defaultdict(collections.Counter)
    total = 0
    for frames in samples(sys.stdin):
        bucket, who = classify(frames)
        buckets[bucket] += 1
        if bucket.startswith(("kernel", "allocation")):
            by_who[bucket][who] += 1
        total += 1
    print(f"samples: {total}" + (f", units {units:.0f}" if units else ""))
    print("| bucket | share of samples | µs per unit |")
    print("| --- | ---: | ---: |")
    for bucket, count in buckets.most_common():
        share = count / total
        us = f"{share * per_unit:.1f}" if per_unit else ""
        print(f"| {bucket} | {share * 100:.1f} % | {us} |")
    print()
    for bucket, whos in sorted(by_who.items(), key=lambda kv: -sum(kv[1].values())):
        parts = ", ".join(f"{w} {c * 100 / total:.1f} %" for w, c in whos.most_common(5))
        print(f"- {bucket}: {parts}")



main()
