#!/bin/sh
# Install what the browser test (tests/system/test_browser.py, marker `browser`) needs:
# Debian's chromium, driven through Playwright with the system browser (Playwright's
# own browser download is never used). Safe to run more than once.
set -eu

if [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y chromium
fi
/usr/bin/chromium --version
