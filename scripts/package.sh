#!/usr/bin/env bash
# Builds Keylink's Linux packages: the release binaries (`keylink-app` with the bundled UI, the
# `keylink` CLI and `docker-credential-keylink`), then a .deb and an .rpm with the Tauri bundler (npm @tauri-apps/cli, as
# locked in packaging/package-lock.json; `make deps` installs it). They land in
#
#   $CARGO_TARGET_DIR/release/bundle/deb/Keylink_<version>_<arch>.deb
#   $CARGO_TARGET_DIR/release/bundle/rpm/Keylink-<version>-1.<arch>.rpm
#
# (CARGO_TARGET_DIR defaults to target/). What goes in them: packaging/tauri.bundle.json; the
# library dependencies are read from the binaries here, as dpkg-shlibdeps and rpm's own
# dependency generator would.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$CARGO_TARGET_DIR"
target="$(cd "$CARGO_TARGET_DIR" && pwd)"
tauri="$PWD/packaging/node_modules/.bin/tauri"
if [[ ! -x "$tauri" ]]; then
    echo "package.sh: the Tauri CLI is missing; run \`make deps\` (npm ci --prefix packaging)" >&2
    exit 1
fi

# One cargo run for both binaries, so they share every dependency build. The
# `custom-protocol` feature is what `tauri build` adds: a production app, not a dev build
# that remembers the source directory.
cargo build --release --locked -p keylink-app -p keylink-cli --features tauri/custom-protocol

app="$target/release/keylink-app"
cli="$target/release/keylink"
docker="$target/release/docker-credential-keylink"

work="$(mktemp -d -t keylink-package.XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Debian: the shared libraries both binaries link, as packages with minimum versions
# (what ${shlibs:Depends} is in a debian/control).
mkdir -p "$work/debian"
printf 'Source: keylink\n\nPackage: keylink\nArchitecture: any\n' >"$work/debian/control"
deb_depends="$(cd "$work" && dpkg-shlibdeps -O "$app" "$cli" "$docker" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
if [[ -z "$deb_depends" ]]; then
    echo "package.sh: dpkg-shlibdeps found no library dependencies of $app" >&2
    exit 1
fi

# RPM: the libraries by soname, the way rpm's elfdeps names them (`libgtk-3.so.0()(64bit)`),
# which Fedora and openSUSE resolve to their own package names.
bits=""
[[ "$(getconf LONG_BIT)" == 64 ]] && bits="(64bit)"
rpm_requires="$(objdump -p "$app" "$cli" "$docker" | awk '$1 == "NEEDED" { print $2 }' | sort -u \
    | sed "s/\$/()$bits/" | paste -sd,)"

# desktop-file-utils: its trigger adds the desktop entry to the MIME cache, the only place GIO
# (gio open, Firefox) looks for the dev.keylink handler.
# The bundler adds WebKitGTK and GTK itself (`libwebkit2gtk-4.1-0, libgtk-3-0`; by soname for
# the .rpm): they are left out here so that no dependency is listed twice.
DEB_DEPENDS="$deb_depends" RPM_REQUIRES="$rpm_requires" CLI="$cli" DOCKER="$docker" node -e '
  const added = /^(libwebkit2gtk-4\.1-0|libgtk-3-0|libwebkit2gtk-4\.1\.so\.0|libgtk-3\.so\.0)\b/;
  const split = (s) => s.split(",").map((d) => d.trim()).filter((d) => d && !added.test(d));
  const cli = {
    "/usr/bin/keylink": process.env.CLI,
    "/usr/bin/docker-credential-keylink": process.env.DOCKER,
  };
  const config = { bundle: { linux: {
    deb: { depends: [...split(process.env.DEB_DEPENDS), "desktop-file-utils"], files: cli },
    rpm: { depends: [...split(process.env.RPM_REQUIRES), "desktop-file-utils"], files: cli },
  } } };
  process.stdout.write(JSON.stringify(config, null, 2));
' >"$work/build.json"

rm -rf "$target/release/bundle/deb" "$target/release/bundle/rpm"
(cd src-tauri && "$tauri" bundle --ci --bundles deb,rpm \
    --config ../packaging/tauri.bundle.json --config "$work/build.json")

echo "Packages:"
ls -l "$target"/release/bundle/deb/*.deb "$target"/release/bundle/rpm/*.rpm
