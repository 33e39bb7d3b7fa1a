#!/usr/bin/env bash
# The setup action's installer. Reads only environment variables:
#   MLOPS_VERSION            release to install (x.y.z); empty, or a version without a release
#                            asset: build from source
#   MLOPS_ACTION_REPOSITORY  owner/name hosting the releases (the action's repository)
#   MLOPS_DOWNLOAD_TOKEN     token for the download (optional)
#   GITHUB_SERVER_URL, GITHUB_ACTION_PATH, RUNNER_TEMP, GITHUB_PATH, GITHUB_OUTPUT (set by Actions)
set -euo pipefail

root="${RUNNER_TEMP:?RUNNER_TEMP is not set}/mlops"
dest="$root/bin"
mkdir -p "$dest"
version="${MLOPS_VERSION:-}"
if [ -n "$version" ]; then
  version="${version#v}"
  if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]]; then
    echo "::error title=mlops setup::version must look like 1.2.3 (got an unexpected value)" >&2
    exit 2
  fi
  repo="${MLOPS_ACTION_REPOSITORY:?MLOPS_ACTION_REPOSITORY is not set}"
  if ! [[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]]; then
    echo "::error title=mlops setup::unexpected action repository" >&2
    exit 2
  fi
  case "$(uname -m)" in
    x86_64) target=x86_64-unknown-linux-gnu ;;
    aarch64) target=aarch64-unknown-linux-gnu ;;
    *) echo "::error title=mlops setup::no release build for $(uname -m); leave version empty to build from source" >&2; exit 2 ;;
  esac
  asset="mlops-${version}-${target}.tar.gz"
  base="${GITHUB_SERVER_URL:-https://github.com}/${repo}/releases/download/v${version}"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  auth=()
  if [ -n "${MLOPS_DOWNLOAD_TOKEN:-}" ]; then
    auth=(--header "Authorization: Bearer ${MLOPS_DOWNLOAD_TOKEN}")
  fi
  # A version without a release asset (404) is built from source instead; any other failure stops.
  status=$(curl --silent --show-error --location --retry 3 "${auth[@]}" -o "$work/$asset" -w '%{http_code}' "$base/$asset" || true)
  if [ "$status" = 404 ]; then
    echo "::warning title=mlops setup::no release asset $asset for v${version}: building the action's source instead"
    version=""
  elif [ "$status" != 200 ]; then
    echo "::error title=mlops setup::downloading $asset answered HTTP $status" >&2
    exit 2
  fi
fi
if [ -n "$version" ]; then
  curl --fail --silent --show-error --location --retry 3 "${auth[@]}" -o "$work/$asset.sha256" "$base/$asset.sha256"
  expected=$(cut -d' ' -f1 < "$work/$asset.sha256")
  actual=$(sha256sum "$work/$asset" | cut -d' ' -f1)
  if [ "$expected" != "$actual" ]; then
    echo "::error title=mlops setup::$asset does not match its published sha256" >&2
    exit 2
  fi
  tar -xzf "$work/$asset" -C "$work"
  install -m 0755 "$(find "$work" -type f -name mlops -perm -u+x | head -n 1)" "$dest/mlops"
else
  src=$(cd "${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set}/../.." && pwd)
  if ! command -v cargo >/dev/null; then
    echo "::error title=mlops setup::building from source needs cargo on the runner; or give a version" >&2
    exit 2
  fi
  cargo install --locked --quiet --root "$root" --path "$src" --bin mlops
fi
"$dest/mlops" --version
echo "$dest" >> "${GITHUB_PATH:?GITHUB_PATH is not set}"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "version=$("$dest/mlops" --version)" >> "$GITHUB_OUTPUT"
fi
