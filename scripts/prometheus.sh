#!/usr/bin/env bash
# Runs Debian's Prometheus on a Ray session's metrics (evolve's campaign metrics among them), in the
# foreground. `ray metrics launch-prometheus` downloads a Prometheus binary, which machines without the
# internet cannot; this installs Debian's `prometheus` instead (as root, when missing).
#
#   bash scripts/prometheus.sh [SESSION_DIR]   scrape that Ray session (default: /tmp/ray/session_latest)
#   bash scripts/prometheus.sh --install       only install Debian's prometheus when missing
#
# The scrape config is the one Ray writes under SESSION_DIR/metrics/prometheus/prometheus.yml when its
# dashboard runs (every node of the cluster, found through Ray's service-discovery file). A session without
# the dashboard has none: then this node's metrics export ports (SESSION_DIR/metrics_export_port_*) are
# scraped. Environment: PROMETHEUS_PORT (9090), PROMETHEUS_DATA (/tmp/evolve-prometheus-$PORT),
# PROMETHEUS_SCRAPE_INTERVAL (5s; only for the config written here). Prometheus listens on 127.0.0.1.
set -euo pipefail
say() { echo "prometheus: $*" >&2; }

install() {
  command -v prometheus >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ]; then say "not installed and this is not root: run 'apt-get install prometheus' as root"; return 1; fi
  say "installing Debian's prometheus"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || { say "apt-get install prometheus failed"; return 1; }
}

if [ "${1:-}" = "--install" ]; then  # for scripts/test.sh: without it the metrics test skips (and fails under CI)
  install || say "the Prometheus test will be skipped"
  exit 0
fi
SESSION=$(readlink -f "${1:-/tmp/ray/session_latest}" || true)
if [ -z "$SESSION" ] || [ ! -d "$SESSION" ]; then
  say "no Ray session at ${1:-/tmp/ray/session_latest}: start Ray first (a campaign, or 'ray start --head'), or name its session dir"
  exit 1
fi
install || exit 1
PORT=${PROMETHEUS_PORT:-9090}
DATA=${PROMETHEUS_DATA:-/tmp/evolve-prometheus-$PORT}
mkdir -p "$DATA"
CONFIG="$SESSION/metrics/prometheus/prometheus.yml"
if [ ! -f "$CONFIG" ]; then  # no dashboard, so Ray wrote no scrape config: scrape this node's export ports
  targets=$(for f in "$SESSION"/metrics_export_port_*; do [ -f "$f" ] && printf "'127.0.0.1:%s', " "$(cat "$f")"; done)
  if [ -z "$targets" ]; then say "$SESSION has no metrics export port (is it a Ray session dir?)"; exit 1; fi
  CONFIG="$DATA/prometheus.yml"
  cat >"$CONFIG" <<EOF
# written by evolve's scripts/prometheus.sh for $SESSION (a Ray session without the dashboard)
global:
  scrape_interval: ${PROMETHEUS_SCRAPE_INTERVAL:-5s}
scrape_configs:
- job_name: ray
  static_configs:
  - targets: [${targets%, }]
EOF
fi
say "http://127.0.0.1:$PORT scraping $SESSION with $CONFIG (data: $DATA)"
exec prometheus --config.file="$CONFIG" --storage.tsdb.path="$DATA/data" --web.listen-address="127.0.0.1:$PORT"
