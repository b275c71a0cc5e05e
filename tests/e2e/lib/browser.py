"""lib/browser.py -- what the headless-Chromium tests need: Debian's chromium,
node and tests/browser/node_modules (playwright-core, installed with `npm ci`
once). `make test` installs chromium and node first (scripts/deps.sh), so a
missing tool is a failure, not a skip: the browser scenarios are part of
what CI proves. EF_E2E_NO_BROWSER=1 skips them knowingly (a machine without
the packages), saying so on stderr."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from lib.stack import fail

BROWSER_DIR = Path(__file__).resolve().parents[2] / "browser"


def tools(who):
    """(chromium, node) for test `who`; None only under EF_E2E_NO_BROWSER=1."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    node, npm = shutil.which("node"), shutil.which("npm")
    missing = [n for n, p in (("chromium", chromium), ("node", node), ("npm", npm)) if not p]
    why = None
    if missing:
        why = "%s not installed (run scripts/deps.sh as root)" % ", ".join(missing)
    elif not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(BROWSER_DIR)],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            why = "`npm ci --prefix tests/browser` failed: %s" % r.stderr.strip()[-300:]
    if why is None:
        return chromium, node
    if os.environ.get("EF_E2E_NO_BROWSER") == "1":
        print("SKIP %s (EF_E2E_NO_BROWSER=1): %s" % (who, why), file=sys.stderr)
        return None
    fail("%s: %s; set EF_E2E_NO_BROWSER=1 to skip the browser tests knowingly" % (who, why))
