#!/usr/bin/env bash
# Download the wheels the GPU machine lacks into .whl/ (git-ignored), for Python 3.12 on this
# platform (x86_64 Linux), at the versions uv.lock pins. Run it where PyPI is reachable; then
# carry .whl/ to the device, where benchmarks/device_suite.sh installs them with
#   pip install --no-index --no-deps --target .site .whl/*.whl
# The device's python3 already has jax[cuda], equinox, optax, numpyro, chex, xarray,
# matplotlib, tqdm, scipy and pytest; everything else lazyrich imports is listed here.
#
#   bash benchmarks/fetch_wheels.sh            # PYTHON (default python3) runs pip
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PACKAGES=(
  neural-tangents frozendict six                        # kernels (through the shim)
  mnist1d requests urllib3 idna certifi charset-normalizer   # data
  tyro docstring-parser typeguard typing-extensions     # the `lazyrich` command line
  jaxtyping wadler-lindig                               # type hints (if equinox's are older)
)

# name==version for each package, from uv.lock (the entry for Python >= 3.12 if it has two)
mapfile -t PINS < <("$PY" - "${PACKAGES[@]}" <<'EOF'
import sys, tomllib
lock = tomllib.load(open("uv.lock", "rb"))
for name in sys.argv[1:]:
    entries = [p for p in lock["package"] if p["name"] == name]
    if not entries:
        sys.exit(f"fetch_wheels.sh: {name} is not in uv.lock: run `uv lock` or drop it")
    # several versions: the last is the one for the newest Pythons (uv sorts them)
    print(f"{name}=={entries[-1]['version']}")
EOF
)

mkdir -p .whl
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --dest .whl "${PINS[@]}"
echo "fetch_wheels.sh: $(ls .whl/*.whl | wc -l) wheels in .whl/ ($(du -sh .whl | cut -f1)):"
ls .whl
