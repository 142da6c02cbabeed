#!/usr/bin/env bash
# Browser tests need Debian's chromium, and the accessibility tests axe-core from npm (pinned in
# tests/a11y/package-lock.json); install what is missing (root on these machines).
set -euo pipefail
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $1 for the browser tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null) \
      || echo "$1 could not be installed: browser tests will fail" >&2
  fi
}
[ -x /usr/bin/chromium ] || apt_install chromium
if [ ! -f tests/a11y/node_modules/axe-core/axe.min.js ]; then
  command -v npm >/dev/null || apt_install npm
  npm ci --prefix tests/a11y --no-audit --no-fund --loglevel=error >/dev/null \
    || echo "axe-core could not be installed: accessibility tests will fail" >&2
fi
