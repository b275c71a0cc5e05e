"""28-build-hardening: the binary under test (EF_BIN) is built hardened, as
the Makefile's flags say: a position-independent executable (ELF type DYN,
PIE), full RELRO (a GNU_RELRO segment and every symbol bound at load:
BIND_NOW / FLAGS_1 NOW), the stack protector (__stack_chk_fail linked).
_FORTIFY_SOURCE=2 is in the plain build only (under ASan the __*_chk
variants it substitutes are not intercepted, so the Makefile leaves it out
of sanitizer builds): a plain binary must link fortified functions
(__snprintf_chk, __memcpy_chk...); when EF_BIN is a sanitizer build, one
object is compiled with the plain build's flags instead and must call them."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import eftest
from eftest import fail

REPO = Path(__file__).resolve().parents[2]


def _run(args, **kw):
    p = subprocess.run(args, capture_output=True, timeout=300, **kw)
    if p.returncode != 0:
        fail("%s failed (%d): %s" % (" ".join(args), p.returncode,
                                     (p.stdout + p.stderr).decode(errors="replace")[-2000:]))
    return p.stdout.decode(errors="replace")


def _readelf(flag, path):
    return _run(["readelf", "-W", flag, path])


def _dyn_symbols(path):
    """Names of the dynamic symbols (defined or not), versions stripped."""
    names = set()
    for line in _readelf("--dyn-syms", path).splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0].endswith(":"):
            names.add(parts[7].split("@")[0])
    return names


def _fortified(names):
    return sorted(n for n in names if re.fullmatch(r"__\w+_chk", n) and n != "__stack_chk_fail")


def _plain_build_object():
    """Compiles src/base/log.c alone with the Makefile's default (plain)
    flags in a scratch folder; returns its undefined symbols."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SANITIZER", "FUZZ", "BUILDDIR",
                        "CFLAGS", "LDFLAGS")}
    tmp = tempfile.mkdtemp(prefix="harden-", dir=str(eftest.log_dir()))
    try:
        obj = os.path.join(tmp, "src", "base", "log.o")
        _run(["make", "-s", "--no-print-directory", "BUILDDIR=" + tmp, obj], cwd=str(REPO),
             env=env)
        flags = Path(tmp, ".flags").read_text()
        for f in ("-D_FORTIFY_SOURCE=2", "-fstack-protector-strong", "-fPIE", "-pie",
                  "-z,relro,-z,now"):
            if f not in flags:
                fail("the plain build's flags lack %s: %s" % (f, flags))
        out = _run(["nm", "-u", obj])
        return {line.split()[-1] for line in out.splitlines() if line.strip()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_pie_full_relro_stack_protector_and_fortify():
    binary = eftest.ef_bin()
    if "DYN" not in re.search(r"Type:\s*(.*)", _readelf("-h", binary)).group(1):
        fail("%s is not a position-independent executable (ELF type DYN)" % binary)
    if "GNU_RELRO" not in _readelf("-l", binary):
        fail("%s has no GNU_RELRO segment (link with -Wl,-z,relro)" % binary)
    dyn = _readelf("-d", binary)
    if not re.search(r"\(BIND_NOW\)|\(FLAGS\)\s+BIND_NOW|\(FLAGS_1\)\s+Flags:.*\bNOW\b", dyn):
        fail("%s is not bound at load (link with -Wl,-z,now):\n%s" % (binary, dyn))
    if not re.search(r"\(FLAGS_1\)\s+Flags:.*\bPIE\b", dyn):
        fail("%s: FLAGS_1 does not say PIE:\n%s" % (binary, dyn))
    names = _dyn_symbols(binary)
    if "__stack_chk_fail" not in names:
        fail("%s does not link __stack_chk_fail (-fstack-protector-strong)" % binary)
    sanitized = any(n.startswith(("__asan_", "__tsan_", "__ubsan_")) for n in names)
    fortified = _fortified(names) if not sanitized else _fortified(_plain_build_object())
    if len(fortified) < 2:
        fail("no fortified calls (-D_FORTIFY_SOURCE=2) in the %s: %r" % (
            "plain build's object" if sanitized else "binary", fortified))
