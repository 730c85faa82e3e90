# What cuepoint and its tests need on a machine, installed when missing. Sourced by ./cuepoint
# (what the embedded default needs to run) and by tests/run.sh (what the tests need); safe to
# re-run: each step checks first and costs about a second once everything is there.
#
# System packages come from apt-get on Debian/Ubuntu (with sudo when not root). Where that is
# not possible it prints exactly what to install and stops. Everything else (Python tools, the
# offline models, the emulator's install, the Cargo target dir in CI) lives under
# CUEPOINT_CACHE (default ~/.cache/cuepoint), outside the clone.
#
#   install_run_deps    FFmpeg, Python 3 with venv and pip (the models installer needs them)
#   install_models      `cuepoint models install` (pinned, sha256-checked; docs in shared/models)
#   install_test_deps   the above plus espeak-ng, curl, cfn-lint and PyYAML; with AWS=1 also what
#                       the LocalStack emulator needs (a JDK, npm)

CUEPOINT_ROOT=${CUEPOINT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export CUEPOINT_CACHE=${CUEPOINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cuepoint}
mkdir -p "$CUEPOINT_CACHE"

_say() { printf 'install: %s\n' "$*" >&2; }

# apt_install PACKAGE... : install the Debian packages given, or explain what to install.
apt_install() {
  [ "$#" -gt 0 ] || return 0
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      _say "cannot install as a normal user without sudo. Please install: $*"
      _say "  (Debian/Ubuntu: apt-get install $*)"
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    _say "no apt-get on this system. Please install the equivalents of these Debian packages: $*"
    return 1
  fi
  _say "installing $* (apt-get)"
  if [ -z "${_CUEPOINT_APT_UPDATED:-}" ]; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _CUEPOINT_APT_UPDATED=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# _missing_run_packages: the Debian packages for what ./cuepoint needs and this machine lacks.
_missing_run_packages() {
  local need=()
  command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
  python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
  echo "${need[@]}"
}

install_run_deps() {
  # shellcheck disable=SC2046
  apt_install $(_missing_run_packages) || return 1
  local still; still=$(_missing_run_packages)
  if [ -n "$still" ]; then
    _say "still missing after installing: $still"
    return 1
  fi
}

# install_models [NAME...] : the offline models, through the cuepoint CLI (built if needed).
install_models() {
  (cd "$CUEPOINT_ROOT" && cargo run --quiet --locked --bin cuepoint -- models install "$@")
}

install_test_deps() {
  local need=()
  command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  if [ "${AWS:-1}" = 1 ]; then
    # The LocalStack emulator (tests/emulator/localstack.sh): DynamoDB Local runs on a JDK and
    # comes from npm.
    command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
    command -v npm >/dev/null 2>&1 || need+=(npm)
  fi
  # The review app's browser test (tests/browser/): Debian's Chromium, driven by playwright-core
  # from npm (installed by install_web_deps).
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  # shellcheck disable=SC2046
  apt_install $(_missing_run_packages) "${need[@]}" || return 1
  install_run_deps || return 1
  ffmpeg -hide_banner -version | head -n1

  # Python tools for the infra checks (pinned), in a venv outside the clone.
  local venv="$CUEPOINT_CACHE/venv-ci"
  if ! "$venv/bin/cfn-lint" --version >/dev/null 2>&1 || ! "$venv/bin/python" -c 'import yaml' 2>/dev/null; then
    _say "installing cfn-lint and PyYAML into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'cfn-lint==1.58.0' 'PyYAML==6.0.3'
  fi
  export CFN_LINT="$venv/bin/cfn-lint" PYTHON="$venv/bin/python"
  # The emulator installs itself (venv, DynamoDB Local jar) on first start, here.
  export EMU_ROOT=${EMU_ROOT:-$CUEPOINT_CACHE/emu}
}

# install_web_deps : the npm packages of the review app (hls.js, served by `cuepoint serve`) and
# of its browser test (playwright-core), pinned by web/package-lock.json; hls.js is copied to
# where the server reads it (web/install.sh).
install_web_deps() {
  if [ -f "$CUEPOINT_ROOT/web/node_modules/.package-lock.json" ] &&
    cmp -s "$CUEPOINT_ROOT/web/package-lock.json" "$CUEPOINT_ROOT/web/node_modules/.cuepoint-lock" &&
    [ -f "${CUEPOINT_WEB_VENDOR:-${XDG_CACHE_HOME:-$HOME/.cache}/cuepoint/web}/hls.min.js" ]; then
    return 0
  fi
  _say "installing the review app's npm packages (web/install.sh)"
  "$CUEPOINT_ROOT/web/install.sh" >&2 || return 1
  cp "$CUEPOINT_ROOT/web/package-lock.json" "$CUEPOINT_ROOT/web/node_modules/.cuepoint-lock"
}
