"""`inception-kit search SPEC --data D --macs N --trials N --epochs E --out DIR`: the most
accurate 1x1 reduction widths within a budget, and the trade-off curve (Optuna; see
`inception_kit.design.search`). `--worker --storage URL` joins a running search."""

from __future__ import annotations

import argparse
import sys

from ..design.search import SAMPLERS, WIDTHS, search
from ..train.trials import KerasTrainer
from .common import EXIT_OK, ProgressBar, budget, count, quiet_tensorflow, safe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a YAML spec file or a preset name")
    parser.add_argument(
        "--data",
        required=True,
        metavar="NAME|idx:DIR|FOLDER",
        help="fashion-mnist (Debian's dataset-fashion-mnist), idx:DIR (MNIST-format IDX files), "
        "digits, or an image folder with one sub-folder per class",
    )
    parser.add_argument("--macs", type=count, metavar="N", help="at most this many MACs (1.2G, 12M)")
    parser.add_argument("--params", type=count, metavar="N", help="at most this many parameters (5M)")
    parser.add_argument(
        "--blocks", metavar="GLOB", help="only reductions in top-level blocks matching this ('inc4*')"
    )
    parser.add_argument(
        "--widths",
        choices=WIDTHS,
        default="reductions",
        help="search the 1x1 reductions (default), or also the kxk convs they feed",
    )
    parser.add_argument(
        "--multiple", type=int, default=8, metavar="N", help="widths in multiples of N (default 8)"
    )
    parser.add_argument(
        "--trials",
        type=int,
        required=True,
        metavar="N",
        help="candidates evaluated within budget, all workers together",
    )
    parser.add_argument("--epochs", type=int, required=True, metavar="E", help="epochs per trial")
    parser.add_argument(
        "--final-epochs",
        type=int,
        metavar="E",
        help="epochs per seed of each front design (default --epochs)",
    )
    parser.add_argument(
        "--subset", type=int, metavar="N", help="training examples per trial (the front trains on all)"
    )
    parser.add_argument(
        "--seeds", type=int, default=3, metavar="N", help="seeds per front design (default 3)"
    )
    parser.add_argument(
        "--front-size",
        type=int,
        metavar="K",
        help="retrain at most K front designs with --seeds seeds, spread over MACs (default all)",
    )
    parser.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="Optuna's sampler (default tpe)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seeds the sampler, the split and the trials (default 0)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=128, metavar="N", help="training batch (default 128)"
    )
    parser.add_argument("--out", "-o", metavar="DIR", help="the results: front.json, front.png, front/*.yaml")
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="sqlite:///PATH, journal:PATH or any SQLAlchemy URL (default sqlite:///DIR/search.db)",
    )
    parser.add_argument(
        "--study", metavar="NAME", help="the study's name in the storage (default the spec's name)"
    )
    parser.add_argument(
        "--worker", action="store_true", help="run trials of a search another process finishes"
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=10,
        metavar="S",
        help="seconds between heartbeats; a worker silent for two is presumed dead (default 10)",
    )


def run(args: argparse.Namespace) -> int:
    quiet_tensorflow()
    plan = args.spec
    # The data is checked before any storage is touched and before TensorFlow loads.
    from ..train.data import inspect_source

    inspect_source(args.data, plan.input_shape)
    trainer = KerasTrainer(args.data, plan.input_shape, batch_size=args.batch_size, budget=budget(args))
    result = search(
        plan,
        trainer=trainer,
        trials=args.trials,
        epochs=args.epochs,
        macs=args.macs,
        params=args.params,
        blocks=args.blocks,
        widths=args.widths,
        multiple=args.multiple,
        subset=args.subset,
        out=args.out,
        storage=args.storage,
        study=args.study,
        worker=args.worker,
        seeds=args.seeds,
        front_size=args.front_size,
        final_epochs=args.final_epochs,
        sampler=args.sampler,
        seed=args.seed,
        data=args.data,
        heartbeat=args.heartbeat,
        budget=budget(args),
        progress=ProgressBar("search"),
    )
    print(
        f"{safe(result.study)}: {result.trained} trials trained, {result.over_budget_trained} over budget "
        f"(of {len(result.trials)} recorded)"
    )
    if args.worker:
        return EXIT_OK
    print(result.table())
    print(
        f"wrote {safe(args.out)}/front.json, front.png and front/ ({len(result.front)} specs)",
        file=sys.stderr,
    )
    return EXIT_OK
