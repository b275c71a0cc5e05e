#!/usr/bin/env bash
# deps.sh -- installs the Debian packages easyflow needs to build, test and run.
#
# Idempotent: when everything is installed it only asks dpkg (well under a
# second) and says so. Otherwise, as root, it runs `apt-get update` once and
# installs what is missing; as another user it prints the exact command and
# exits 1.
#
# Installing `postgresql` / `redis-server` may start system services on 5432
# and 6379. easyflow never uses them: scripts/services.sh runs private
# instances on their own ports under .state/.
set -euo pipefail

PACKAGES=(
    build-essential pkg-config
    libwebsockets-dev libcurl4-openssl-dev libpq-dev libhiredis-dev libjson-c-dev
    # libwebsockets' libev plugin and libev: the HTTP server's loop is libev's
    # (epoll), not libwebsockets' own poll() of every connection (http.c).
    libwebsockets-evlib-ev libev-dev
    libpcre2-dev libssl-dev libyaml-dev libsodium-dev libcmocka-dev
    libhunspell-dev hunspell-ru hunspell-en-us
    postgresql redis-server
    python3 curl ca-certificates
    wrk
    clang clang-format
    # The console's browser test (tests/e2e/16-console-browser.py): headless
    # Chromium driven by playwright-core from npm (tests/browser).
    # (npm only when no npm is on PATH: NodeSource's nodejs ships its own
    # and conflicts with Debian's npm package.)
    chromium nodejs
)
command -v npm >/dev/null || PACKAGES+=(npm)

missing=()
# One dpkg-query for all packages; absent ones are reported on stderr.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for p in "${PACKAGES[@]}"; do
    if ! grep -q "^${p} ii" <<<"$installed"; then
        missing+=("$p")
    fi
done

# playwright-core for the browser test, pinned by tests/browser/package-lock.json.
browser_modules() {
    local dir
    dir="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
    if [ ! -d "$dir/node_modules/playwright-core" ] && command -v npm >/dev/null; then
        echo "deps: npm ci --prefix tests/browser"
        npm ci --no-audit --no-fund --prefix "$dir" ||
            echo "deps: npm ci failed: the console's browser test will be skipped" >&2
    fi
}

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PACKAGES[@]} packages installed"
    browser_modules
    exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: run as root:" >&2
    echo "  sudo sh -c 'DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive $cmd'" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps: installing ${missing[*]}"
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends "${missing[@]}"
browser_modules
echo "deps: done"
