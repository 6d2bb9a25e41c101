"""Train and measure the smoke zoo in a fresh cache; print its fingerprint: A3's tau and each model's weights hash.

Paper A's numbers depend on the SIMD kernels torch dispatches to (see the README, "Paper A is deterministic
given the cache and the CPU's SIMD kernels"). Run it twice to compare two machines, or one machine under
different kernel settings:

    .venv/bin/python scripts/zoo_numerics.py --out a.json
    MKL_CBWR=AVX2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python scripts/zoo_numerics.py --out b.json
    .venv/bin/python scripts/zoo_numerics.py --compare a.json b.json

About 4 min on one core (16 MNIST-1D MLPs, one torch thread).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fingerprint(trainer: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from harness.ml import profiles
    from harness.ml.measures import measure_family
    from harness.ml.stats import kendall_tau
    from harness.ml.zoo import ModelZoo

    zoo = ModelZoo(tempfile.mkdtemp(prefix="zoo-numerics-"), trainer=trainer)
    cfgs = profiles.zoo_configs("smoke")
    rows = measure_family(zoo, cfgs)
    conv = [r for r in rows if r["converged"]]
    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "trainer": trainer,
        "converged": len(conv),
        "tau_loss_gap": kendall_tau([r["prunability"] for r in conv], [r["loss_gap"] for r in conv]),
        "tau_error_gap": kendall_tau([r["prunability"] for r in conv], [r["error_gap"] for r in conv]),
        "models": {
            c.short(): {
                "weights_sha256": json.loads(zoo.meta_path(zoo.entry_key(c)).read_text())["weights_sha256"],
                **{k: r[k] for k in ("converged", "epochs", "train_loss", "prunability", "loss_gap", "error_gap")},
            }
            for c, r in zip(cfgs, rows, strict=True)
        },
    }


def compare(a: dict, b: dict) -> int:
    differ = [k for k in a["models"] if a["models"][k]["weights_sha256"] != b["models"].get(k, {}).get("weights_sha256")]
    for name, fp in (("A", a), ("B", b)):
        print(f"{name}: {fp['cpu_capability']}, torch {fp['torch']}, {fp['trainer']}: {fp['converged']} converged, "
              f"tau(prunability, loss gap) {fp['tau_loss_gap']:.3f}, error gap {fp['tau_error_gap']:.3f}")
    print(f"{len(differ)} of {len(a['models'])} models differ bit for bit")
    for k in differ:
        ma, mb = a["models"][k], b["models"][k]
        print(f"  {k}: prunability {ma['prunability']:.4f} / {mb['prunability']:.4f}, "
              f"loss gap {ma['loss_gap']:.4f} / {mb['loss_gap']:.4f}")
    return 1 if differ else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="write the fingerprint (JSON) here")
    ap.add_argument("--trainer", default="per-model", choices=("per-model", "ensemble"))
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"),
                    help="compare two fingerprints; exit 1 when any model differs")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(*(json.loads(p.read_text()) for p in args.compare))
    fp = fingerprint(args.trainer)
    if args.out:
        args.out.write_text(json.dumps(fp, indent=1, sort_keys=True))
    print(f"{fp['cpu_capability']}: {fp['converged']} converged, tau loss gap {fp['tau_loss_gap']:.3f}, "
          f"error gap {fp['tau_error_gap']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
