#!/usr/bin/env bash
# Chromium from Debian's packages, for the test that opens report.html in a real browser
# (tests/test_report.py). Does nothing when /usr/bin/chromium is there; needs root and apt-get.
# About a minute on a fresh Debian 12 machine (apt-get update, then ~130 packages).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium
fi
