#!/usr/bin/env bash
# Installs /tmp/facecaptured.deb inside ROOT (a Debian root with systemd and dbus,
# made by debootstrap; tests/boards.sh makes one) with chroot and dpkg, and checks
# what an operator gets: the files, the users and directories, the enable links,
# a runnable daemon whose shipped config checks, the conffile kept across a
# reinstall, and what removal and purge leave. Usage: deb-install.sh ROOT (as root)
set -euo pipefail

root=${1:?usage: deb-install.sh ROOT}
[ -f "$root/tmp/facecaptured.deb" ] || { echo "deb-install.sh: no $root/tmp/facecaptured.deb" >&2; exit 1; }
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
fail() { echo "deb-install.sh: FAILED: $*" >&2; exit 1; }
ok() { echo "   ok: $*"; }

# A system has /proc (systemd-tmpfiles needs it); nothing may start services here.
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2> /dev/null || true' EXIT
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

out=$(in_root dpkg -i /tmp/facecaptured.deb 2>&1) || { echo "$out"; fail "dpkg -i"; }
if grep -i "unknown username\|unknown group" <<< "$out"; then
  fail "dpkg -i: the D-Bus policy landed before its user existed"
fi
ok "dpkg -i: its dependencies are in a Debian 12 system with dbus; no unknown user"

for f in /usr/bin/facecaptured /usr/bin/facecapturectl; do
  [ -x "$root$f" ] || fail "$f missing or not executable"
done
[ "$(readlink "$root/usr/bin/facecapturectl")" = facecaptured ] \
  || fail "/usr/bin/facecapturectl is not a link to facecaptured"
in_root facecapturectl --help | grep -q "^Usage: facecapturectl " \
  || fail "facecapturectl (the link) does not answer as the CLI"
for f in /usr/lib/systemd/system/facecaptured.service /usr/lib/systemd/system/facecaptured-provision.service \
         /usr/lib/sysusers.d/facecaptured.conf /usr/lib/tmpfiles.d/facecaptured.conf \
         /usr/share/dbus-1/system.d/org.facecapture.FaceCapture1.conf \
         /usr/share/dbus-1/system-services/org.facecapture.FaceCapture1.service \
         /usr/share/dbus-1/interfaces/org.facecapture.FaceCapture1.xml \
         /etc/facecaptured/config.toml; do
  [ -f "$root$f" ] || fail "$f missing"
done
ok "binaries, unit, sysusers, tmpfiles, D-Bus policy, activation, interface, config"

# Users: the daemon's own (no login, home the state directory) and the callers' groups.
pw=$(in_root getent passwd facecaptured) || fail "no user facecaptured"
IFS=: read -r _ _ uid _ _ home shell <<< "$pw"
[ "$uid" -lt 1000 ] || fail "facecaptured is not a system user (uid $uid)"
[ "$home" = /var/lib/facecaptured ] || fail "facecaptured's home is $home"
case "$shell" in */nologin | */false) ;; *) fail "facecaptured's shell is $shell" ;; esac
for g in facecapture facecapture-admin; do
  in_root getent group "$g" > /dev/null || fail "no group $g"
done
ok "users: facecaptured (uid $uid, $shell), groups facecapture and facecapture-admin"

# Directories from the tmpfiles entry.
# (Owners by number: the names are the root's, not this machine's.)
mode_owner() { stat -c '%a %u' "$root$1"; }
[ "$(mode_owner /var/lib/facecaptured)" = "700 $uid" ] \
  || fail "/var/lib/facecaptured is $(mode_owner /var/lib/facecaptured)"
[ "$(mode_owner /etc/facecaptured/credentials)" = "700 0" ] \
  || fail "/etc/facecaptured/credentials is $(mode_owner /etc/facecaptured/credentials)"
ok "directories: /var/lib/facecaptured 0700 facecaptured, credentials 0700 root"

# Enabled (also the D-Bus activation alias), not started.
wants=/etc/systemd/system/multi-user.target.wants/facecaptured.service
alias=/etc/systemd/system/dbus-org.facecapture.FaceCapture1.service
[ -L "$root$wants" ] || fail "not enabled: $wants missing"
[ -L "$root$alias" ] || fail "no activation alias: $alias missing"
ok "enabled: $wants, $alias"

# The daemon runs on this system, and the example config it ships is valid once
# the tenant's secrets are given as the unit gives them (systemd credentials).
in_root facecaptured --version | grep -q '^facecaptured ' || fail "facecaptured --version"
mkdir -p "$root/tmp/creds"
printf 'example-secret' > "$root/tmp/creds/client_secret"
printf 'example-apikey' > "$root/tmp/creds/apikey"
in_root CREDENTIALS_DIRECTORY=/tmp/creds facecaptured --check-config \
  --config /etc/facecaptured/config.toml \
  || fail "the shipped /etc/facecaptured/config.toml does not check"
if in_root facecaptured --check-config --config /etc/facecaptured/config.toml 2> /dev/null; then
  fail "--check-config passed without the secrets"
fi
ok "facecaptured --version and --check-config run; the shipped config checks"

# The conffile: an operator's edit survives reinstalling (or upgrading) the package.
in_root dpkg-query -W -f='${Conffiles}\n' facecaptured | grep -q '/etc/facecaptured/config.toml' \
  || fail "dpkg does not list /etc/facecaptured/config.toml as a conffile"
echo '# edited by the operator' >> "$root/etc/facecaptured/config.toml"
in_root dpkg -i --force-confold /tmp/facecaptured.deb > /dev/null
grep -q '^# edited by the operator' "$root/etc/facecaptured/config.toml" \
  || fail "reinstalling overwrote the operator's config"
ok "conffile: the operator's edit is kept across a reinstall"

# Remove keeps the configuration and the enrollments; purge takes both.
echo enrollments > "$root/var/lib/facecaptured/facecaptured.db"
in_root dpkg -r facecaptured > /dev/null
[ ! -e "$root/usr/bin/facecaptured" ] || fail "remove left /usr/bin/facecaptured"
[ ! -L "$root$wants" ] && [ ! -L "$root$alias" ] || fail "remove left the enable links"
[ -f "$root/etc/facecaptured/config.toml" ] || fail "remove took the config"
[ -f "$root/var/lib/facecaptured/facecaptured.db" ] || fail "remove took the enrollments"
ok "remove: binaries and enable links gone, config and enrollments kept"
in_root dpkg -P facecaptured > /dev/null
[ ! -e "$root/etc/facecaptured/config.toml" ] || fail "purge left the config"
[ ! -e "$root/var/lib/facecaptured" ] || fail "purge left /var/lib/facecaptured"
[ ! -e "$root/etc/facecaptured" ] || fail "purge left /etc/facecaptured: $(ls -A "$root/etc/facecaptured")"
ok "purge: config, credentials and state gone"
echo "deb-install.sh: all checks passed"
