#!/usr/bin/env bash
# Installs what the build and the test suite need on a Debian 12 machine, skipping what is
# already there. Run as root (CI is); as another user it only reports what is missing.
set -euo pipefail

pkgs=(libelf-dev zlib1g-dev libbpf-dev clang pkg-config sip-tester iproute2 iputils-ping ethtool tcpdump
      ansible ansible-lint yamllint debootstrap systemd curl chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# apt_install WHAT PACKAGES...: installs them as root, or names them and fails otherwise.
apt_install() {
  local what=$1; shift
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing $what: $* (run as root: apt-get install $*)" >&2
    exit 1
  fi
  echo "install-deps: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ((${#missing[@]})); then
  apt_install "Debian packages" "${missing[@]}"
fi

# The web manager's browser test (tests/web): Debian's chromium (above), Node.js with npm, and
# playwright-core at the version pinned in tests/web/package-lock.json (npm ci; no browser
# download: the test drives /usr/bin/chromium).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install "node/npm" nodejs npm
fi
web_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/web"
pw_want="$(node -e 'console.log(require(process.argv[1]).packages["node_modules/playwright-core"].version)' "$web_dir/package-lock.json")"
pw_have="$(node -e 'try { console.log(require(process.argv[1]).version) } catch (e) { console.log("") }' "$web_dir/node_modules/playwright-core/package.json")"
if [[ "$pw_have" != "$pw_want" ]]; then
  echo "install-deps: npm ci in tests/web (playwright-core $pw_want)"
  (cd "$web_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
echo "install-deps: web test: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium ?'), node $(node --version), playwright-core $pw_want"

# sipvicious (PyPI) for tests/attacks/capture-scan.sh: the scanner real attackers use.
# 0.3.x installs console scripts sipvicious_svmap, sipvicious_svwar, sipvicious_svcrack (old
# releases had svmap.py etc.); the same code runs as `python3 -m sipvicious.svmap`, which
# the capture script falls back to when the scripts directory is not on PATH.
# SECSIP_PYTHON picks the interpreter (default python3: pyenv's here, Debian's elsewhere).
PY="${SECSIP_PYTHON:-python3}"
sv_tools=(svmap svwar svcrack)

sv_commands_work() {
  local t
  for t in "${sv_tools[@]}"; do
    "sipvicious_$t" --version >/dev/null 2>&1 || return 1
  done
}

sv_modules_work() {
  "$PY" -c 'import sipvicious.svmap, sipvicious.svwar, sipvicious.svcrack' >/dev/null 2>&1
}

if ! command -v "$PY" >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: $PY not found (run as root: apt-get install python3 python3-pip)" >&2
    exit 1
  fi
  echo "install-deps: installing python3 python3-pip"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-pip >/dev/null
  PY=python3
fi

if ! sv_commands_work && ! sv_modules_work; then
  if ! "$PY" -m pip --version >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "install-deps: $PY has no pip (run as root: apt-get install python3-pip)" >&2
      exit 1
    fi
    echo "install-deps: installing python3-pip"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  pip_args=(install --quiet --disable-pip-version-check)
  # As another user, install into ~/.local rather than fail on a root-owned site-packages.
  [[ $(id -u) -eq 0 ]] || pip_args+=(--user)
  # Debian 12's own python3 is "externally managed" (PEP 668): pip refuses unless told.
  if "$PY" -c 'import sys, sysconfig, os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)' 2>/dev/null; then
    pip_args+=(--break-system-packages)
  fi
  echo "install-deps: installing sipvicious with $("$PY" -c 'import sys; print(sys.executable)') -m pip ${pip_args[*]} sipvicious"
  PIP_ROOT_USER_ACTION=ignore "$PY" -m pip "${pip_args[@]}" sipvicious
  # pyenv only sees new console scripts after a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash 2>/dev/null || true; fi
  hash -r
  if ! sv_modules_work; then
    echo "install-deps: sipvicious installed but '$PY -c "import sipvicious.svmap"' fails" >&2
    exit 1
  fi
fi

sv_where="$(command -v sipvicious_svmap 2>/dev/null || true)"
if [[ -n "$sv_where" ]] && sv_commands_work; then
  sv_how="commands ${sv_tools[*]/#/sipvicious_} in ${sv_where%/*}"
else
  # pip put the console scripts where PATH does not look (e.g. ~/.local/bin, or another
  # interpreter's bin). Say where they are; the capture scripts use `python3 -m` then.
  sv_bin="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
  sv_user_bin="$("$PY" -c 'import os, sysconfig; print(sysconfig.get_path("scripts", os.name + "_user"))' 2>/dev/null || true)"
  sv_found=
  for d in "$sv_bin" "$sv_user_bin"; do
    [[ -n "$d" && -x "$d/sipvicious_svmap" ]] && { sv_found="$d"; break; }
  done
  if [[ -n "$sv_found" ]]; then
    echo "install-deps: sipvicious commands are in $sv_found, which is not on PATH;" \
         "tests run them as '$PY -m sipvicious.svmap' (or add $sv_found to PATH)" >&2
  else
    echo "install-deps: no sipvicious_* commands found; tests run '$PY -m sipvicious.svmap'" >&2
  fi
  sv_how="$PY -m sipvicious.{svmap,svwar,svcrack}"
fi
sv_version="$("$PY" -c 'from sipvicious.libs.svhelper import __version__; print(__version__)' 2>/dev/null || echo '?')"
echo "install-deps: sipvicious $sv_version: $sv_how"

# promtool (Debian's `prometheus` package) for tests/metrics.rs: `promtool check metrics` on
# the /metrics text. Installing the package would start a Prometheus server, so the .deb is
# only downloaded and unpacked into a cache; the test looks for it there.
PROMTOOL_DIR="${SECSIP_PROMTOOL_DIR:-/var/cache/secsip-promtool}"
promtool="$PROMTOOL_DIR/usr/bin/promtool"
if ! "$promtool" --version >/dev/null 2>&1; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: promtool missing (run as root to unpack Debian's prometheus into $PROMTOOL_DIR)" >&2
    exit 1
  fi
  echo "install-deps: unpacking promtool from Debian's prometheus package into $PROMTOOL_DIR"
  dl="$(mktemp -d)"
  # apt-get download runs as _apt when it can; let it write the .deb.
  chmod 755 "$dl"
  if ! (cd "$dl" && apt-get download -qq prometheus 2>/dev/null); then
    apt-get update -qq
    (cd "$dl" && apt-get download -qq prometheus)
  fi
  rm -rf "$PROMTOOL_DIR.tmp"
  dpkg -x "$dl"/prometheus_*.deb "$PROMTOOL_DIR.tmp"
  rm -rf "$dl" "$PROMTOOL_DIR"
  mv "$PROMTOOL_DIR.tmp" "$PROMTOOL_DIR"
  "$promtool" --version >/dev/null 2>&1 || { echo "install-deps: $promtool does not run" >&2; exit 1; }
fi
echo "install-deps: promtool: $promtool ($("$promtool" --version 2>&1 | head -1))"

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found: install a Rust toolchain >= 1.85 (rustup) first" >&2
  exit 1
fi
# cargo-fuzz drives the fuzz targets (make fuzz); pinned so CI builds what was tried here.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "install-deps: installing cargo-fuzz 0.13.2"
  cargo install cargo-fuzz --locked --version 0.13.2 --quiet
fi
echo "install-deps: ok (${pkgs[*]}, sipvicious, promtool and $(cargo fuzz --version) present; $(cargo --version))"
