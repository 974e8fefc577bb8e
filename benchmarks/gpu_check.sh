#!/usr/bin/env bash
# The GPU checks as one short script, for a machine with a CUDA GPU (the CI has none, and
# the tests that need one skip there). Run from the repository root with the venv built:
#     bash benchmarks/gpu_check.sh
# It runs the GPU-marked tests, then benches the digits CNN on cuda against the CPU for
# one activation (the stack on each device) and prints both times.
set -euo pipefail
PY=${PY:-.venv/bin/python}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU here'; print(torch.cuda.get_device_name())"
"$PY" -m pytest -q tests/test_gpu.py -p no:cacheprovider
out=$(mktemp -d)
for device in cuda cpu; do
  start=$(date +%s.%N)
  "$PY" -m actlab.cli bench examples/digits_cnn.py:make_cnn --activations ReLU --seeds 8 \
    --steps 300 --executor local --device "$device" --out "$out/$device" > /dev/null
  echo "bench on $device: $(echo "$(date +%s.%N) - $start" | bc) s"
done
"$PY" - "$out" <<'PYEOF'
import sys
import pandas as pd
a, b = (pd.read_csv(f"{sys.argv[1]}/{d}/results.csv") for d in ("cuda", "cpu"))
pick = lambda r: r[(r.metric == "test_loss") & r.step.isna()].sort_values("seed")["value"].to_numpy()
print("test loss, cuda vs cpu, largest relative difference:", abs(pick(a) / pick(b) - 1).max())
PYEOF
rm -rf "$out"
