#!/usr/bin/env bash
# Makes a headless browser available for the web view's tests: installs Debian's chromium and
# chromium-driver when run as root and either is missing. Selenium is then pointed at
# /usr/bin/chromedriver explicitly, so Selenium Manager never downloads a browser or a driver.
# Quick when both are present.
set -uo pipefail
have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
have && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "chromium: chromium or chromedriver missing and this is not root; the browser tests will be skipped" >&2
  exit 0
fi
echo "chromium: installing Debian's chromium and chromium-driver" >&2
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
  || { echo "chromium: apt-get install chromium chromium-driver failed" >&2; exit 1; }
have || { echo "chromium: installed, but chromium or chromedriver is not on PATH" >&2; exit 1; }
