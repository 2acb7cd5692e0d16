#!/usr/bin/env bash
# Checks the Debian packages `./dev package` built: installs each into a scratch root (dpkg -x),
# runs its binaries' --version and --help from there, checks the files a Debian user relies on
# (man pages, systemd unit, conffiles, copyright) and runs lintian (no errors allowed).
# Prints one `PASS name` / `FAIL name: why` line per check and a last line
# `package checks: N passed, N failed`; exits 1 if any failed.
# Usage: packaging/check.sh <dir with the .deb files> <version>
set -uo pipefail
dir=${1:?usage: check.sh <packages dir> <version>}
version=${2:?usage: check.sh <packages dir> <version>}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
passed=0 failed=0

check() { # <name> <command...>: PASS if the command succeeds
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name: $(tail -n 5 <<<"$out")"
    failed=$((failed + 1))
  fi
}

# <root> <binary> <version flag> <expected version line>
prints_version() { [[ "$("$1/usr/bin/$2" "$3")" == "$4" ]]; }
prints_help() { "$1/usr/bin/$2" "$3" | grep -q "$4"; }
has_files() { # <root> <path...>
  local root=$1 f
  shift
  for f in "$@"; do [[ -f $root$f ]] || { echo "missing $f"; return 1; }; done
}
conffiles_are() { # <deb> <expected>
  local got
  got=$(dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles)
  [[ $got == "$2" ]] || { echo "conffiles: '$got', expected '$2'"; return 1; }
}
lintian_clean() { # <deb>: lintian's errors fail; warnings are printed for the log
  local out
  out=$(lintian --no-tag-display-limit "$1" 2>&1)
  echo "$out"
  ! grep -q '^E: ' <<<"$out"
}
man_renders() { # <root> <page.gz>: man(1) reads it without a warning
  [[ -n "$(command -v man)" ]] || return 0
  local out
  out=$(MANWIDTH=80 man --warnings -l "$1$2" 2>&1 >/dev/null)
  [[ -z $out ]] || { echo "$out"; return 1; }
}

for package in faultproxy user-service; do
  deb=$(ls "$dir/${package}_${version}-1_"*.deb 2>/dev/null | head -n1)
  if [[ -z $deb ]]; then
    echo "FAIL $package: no ${package}_${version}-1_*.deb in $dir"
    failed=$((failed + 1))
    continue
  fi
  root=$scratch/$package
  check "$package: unpacks (dpkg -x)" dpkg -x "$deb" "$root"
  check "$package: lintian has no errors" lintian_clean "$deb"
  check "$package: version is $version" bash -c "[[ \$(dpkg-deb -f '$deb' Version) == $version-1 ]]"
  case $package in
    faultproxy)
      check "faultproxy -version" prints_version "$root" faultproxy -version \
        "faultproxy version $version (toxiproxy-server 2.12.0 API)"
      check "faultproxy -help" prints_help "$root" faultproxy -help "Usage of faultproxy"
      check "faultproxy-cli --version" prints_version "$root" faultproxy-cli --version "faultproxy-cli version 2.12.0"
      check "faultproxy-cli --help" prints_help "$root" faultproxy-cli --help "faultproxy-cli - Simulate"
      check "faultproxy: files" has_files "$root" /usr/share/man/man1/faultproxy.1.gz \
        /usr/share/man/man1/faultproxy-cli.1.gz /lib/systemd/system/faultproxy.service \
        /etc/faultproxy/config.json /usr/share/doc/faultproxy/copyright
      check "faultproxy: conffiles" conffiles_are "$deb" /etc/faultproxy/config.json
      check "faultproxy: unit starts it with -config /etc/faultproxy/config.json" \
        grep -q '^ExecStart=/usr/bin/faultproxy .*-config /etc/faultproxy/config.json' \
        "$root/lib/systemd/system/faultproxy.service"
      check "faultproxy: man pages render" man_renders "$root" /usr/share/man/man1/faultproxy.1.gz
      check "faultproxy-cli: man page renders" man_renders "$root" /usr/share/man/man1/faultproxy-cli.1.gz
      ;;
    user-service)
      check "user-service --version" prints_version "$root" user-service --version "user-service version $version"
      check "user-service --help" prints_help "$root" user-service --help "usage: user-service"
      # The installed configuration is valid: the service reads it and prints the effective one.
      check "user-service --print-config with /etc/user-service/config.json" \
        "$root/usr/bin/user-service" --config="$root/etc/user-service/config.json" --print-config
      check "user-service --print-schema prints the three fence triggers" bash -c \
        "[[ \$('$root/usr/bin/user-service' --print-schema | grep -c '^CREATE TRIGGER') == 3 ]]"
      check "user-service: files" has_files "$root" /usr/share/man/man8/user-service.8.gz \
        /lib/systemd/system/user-service.service /etc/user-service/config.json \
        /usr/share/doc/user-service/copyright
      check "user-service: conffiles" conffiles_are "$deb" /etc/user-service/config.json
      check "user-service: man page renders" man_renders "$root" /usr/share/man/man8/user-service.8.gz
      ;;
  esac
done

echo "package checks: $passed passed, $failed failed"
((failed == 0))
