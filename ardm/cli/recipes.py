"""`ardm recipes`: list the training recipes (ardm.training.recipes.RECIPES)."""

from __future__ import annotations


def add_parser(sub) -> None:
    sub.add_parser("recipes", help="list the training recipes")


def run(args) -> int:
    from ardm.training.recipes import RECIPES

    for name, fn in RECIPES.items():
        print(f"{name:22s} {fn.__doc__.strip().splitlines()[0]}")
    return 0
