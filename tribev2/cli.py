"""The ``tribev2`` command line: a thin layer over the public functions."""

from __future__ import annotations

import argparse
import sys


def _convert(args: argparse.Namespace) -> int:
    from .model import convert

    out = convert(args.source, args.output)
    print(f"wrote {out}/model.safetensors, build_args.json, config.yaml")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tribev2", description="Run the TRIBE v2 brain-encoding model.")
    sub = parser.add_subparsers(dest="command", required=True)

    convert = sub.add_parser("convert", help="write model.safetensors + build_args.json + config.yaml from a "
                                             "best.ckpt folder or hub repo id",
                             description="Convert a Lightning checkpoint (config.yaml + best.ckpt) into the "
                                         "safetensors form. The converted folder loads to identical weights.")
    convert.add_argument("source", help="folder holding config.yaml and best.ckpt, or a Hugging Face repo id")
    convert.add_argument("output", help="folder to write (created if missing)")
    convert.set_defaults(run=_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"tribev2 {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
