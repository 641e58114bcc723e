#!/usr/bin/env bash
# Sourced by the install_*.sh scripts: `apt_install TAG [apt-get options --] PACKAGE...`
# installs Debian packages with apt-get (as root, or through sudo), or says in one line why it
# cannot and returns non-zero. One place for what every system dependency of the tests needs.
apt_install() {
  local tag=$1; shift
  local opts=()
  if [ "${1:-}" = "--no-install-recommends" ]; then opts+=("$1"); shift; fi
  if ! command -v apt-get >/dev/null; then
    echo "$tag: apt-get not available; install $* by hand" >&2
    return 1
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
      sudo="sudo"
    else
      echo "$tag: need root (or sudo) to apt-get install $*" >&2
      return 1
    fi
  fi
  echo "$tag: installing $* with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${opts[@]}" "$@" >&2
}
