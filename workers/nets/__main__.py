"""``python -m workers.nets make-tiny-cifar DIR``: write a small synthetic CIFAR-100
(python-pickle format) for tests, examples and trying ``resnet_cifar_finetune``."""

from __future__ import annotations

import argparse
import sys

from workers.nets.data import write_tiny_cifar100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.nets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tiny = sub.add_parser("make-tiny-cifar", help="write a synthetic CIFAR-100 directory")
    tiny.add_argument("directory", help="cifar-100-python/ is created inside it")
    tiny.add_argument("--per-class-train", type=int, default=5)
    tiny.add_argument("--per-class-test", type=int, default=2)
    tiny.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    target = write_tiny_cifar100(
        args.directory,
        per_class_train=args.per_class_train,
        per_class_test=args.per_class_test,
        seed=args.seed,
    )
    print(f"wrote {target} (set SWEEPS_DATA__CIFAR100_DIR={args.directory})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
