"""The Fashion-MNIST experiment of issue 27: search against fit, on fashion_inception.

    PYTHONPATH=. .venv/bin/python benchmarks/search_fashion.py --out runs/search_fashion \\
        [--trials 24 --epochs 1 --subset 10000 --final-epochs 1 --seeds 3 --front-size 2]

1. `search` with a MACs budget of half the original's (by default): the trials train
   `--epochs` on `--subset` examples, scored on a held-out tenth of the training set; the
   front's designs (at most `--front-size`) are trained on the whole training set with
   `--seeds` seeds and scored on the 10,000 test images.
2. The original spec and `fit`'s design at the same budget, trained and scored the same
   way with the same seeds.
3. The issue's two checks: a front design with at most half the original's MACs within 0.5
   points of the original's accuracy; the search's best design within the budget at least as
   accurate as fit's (mean ± sd of the seeds each). Written to OUT/experiment.json too.

Needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist). The search is
resumable (run it again with the same arguments); the comparison trainings are kept in
OUT/experiment.json and skipped when already there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from inception_kit.analysis import analyse
from inception_kit.design.fit import fit
from inception_kit.design.search import search
from inception_kit.files import write_text
from inception_kit.loading import loads
from inception_kit.train.trials import KerasTrainer

SPEC = Path(__file__).resolve().parent.parent / "specs" / "fashion_inception.yaml"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--subset", type=int, default=10000)
    ap.add_argument("--final-epochs", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--front-size", type=int, default=2)
    ap.add_argument("--share", type=float, default=0.5, help="the MACs budget as a share of the original's")
    args = ap.parse_args()
    out = Path(args.out)
    t0 = time.monotonic()
    original = analyse(loads(SPEC.read_text(), str(SPEC))).total
    budget = int(original.macs * args.share)
    trainer = KerasTrainer("fashion-mnist", (28, 28, 1))

    def progress(done: int, total: int, what: str) -> None:
        print(f"[{time.monotonic() - t0:7.0f}s] {done}/{total} {what}", file=sys.stderr, flush=True)

    result = search(
        SPEC,
        trainer=trainer,
        trials=args.trials,
        epochs=args.epochs,
        macs=budget,
        subset=args.subset,
        out=out,
        seeds=args.seeds,
        front_size=args.front_size,
        final_epochs=args.final_epochs,
        data="fashion-mnist",
        progress=progress,
    )
    t_search = time.monotonic() - t0
    print(result.table())
    record_path = out / "experiment.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    fitted = fit(SPEC, macs=budget)
    fitted_plan = loads(fitted.text, "<fit>")
    for name, plan in (("original", loads(SPEC.read_text(), str(SPEC))), ("fit", fitted_plan)):
        accs = record.setdefault(name, {}).setdefault("accuracies", {})
        for s in range(args.seeds):
            if str(s) not in accs:
                progress(s, args.seeds, f"{name}: seed {s}")
                accs[str(s)] = trainer(plan, epochs=args.final_epochs, seed=s, subset=None, final=True)
                write_text(record_path, json.dumps(record, indent=1) + "\n", overwrite=True)
        record[name]["macs"] = analyse(plan).total.macs
    t_all = time.monotonic() - t0

    def stats(values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    orig_m, orig_sd = stats(list(record["original"]["accuracies"].values()))
    fit_m, fit_sd = stats(list(record["fit"]["accuracies"].values()))
    half = [p for p in result.front if p.macs <= original.macs / 2]
    best = max(result.front, key=lambda p: p.accuracy)
    checks = {
        "half_macs_within_half_point": any(orig_m - p.accuracy <= 0.005 for p in half),
        "search_best_at_least_fit": best.accuracy >= fit_m,
    }
    record.update(
        budget_macs=budget,
        original_macs=original.macs,
        seconds_search=round(t_search),
        seconds_all=round(t_all),
        front=[
            {"trial": p.trial, "macs": p.macs, "accuracy": p.accuracy, "sd": p.sd, "accuracies": p.accuracies}
            for p in result.front
        ],
        trials_trained=result.trained,
        over_budget_trained=result.over_budget_trained,
        checks=checks,
        settings=vars(args),
    )
    write_text(record_path, json.dumps(record, indent=1) + "\n", overwrite=True)
    print(f"original: {original.macs:,} MACs, accuracy {orig_m:.4f} ± {orig_sd:.4f} ({args.seeds} seeds)")
    print(f"fit at {budget:,} MACs: {record['fit']['macs']:,} MACs, accuracy {fit_m:.4f} ± {fit_sd:.4f}")
    print(
        f"search best: trial {best.trial}, {best.macs:,} MACs, accuracy {best.accuracy:.4f} ± {best.sd:.4f}"
    )
    print(f"checks: {checks}; search {t_search:.0f} s, all {t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
