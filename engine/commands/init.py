"""`python -m engine init`: create the store and load the bundled seed data it does not hold yet
(the runs of data/seed/*.parquet and the published quality figures of data/seed/quality.csv)."""
from __future__ import annotations

from engine import seed
from engine.commands import add_db
from engine.store import Store


def add_parser(sub):
    p = sub.add_parser("init", help="build the store from data/seed (runs and published quality) where it lacks them")
    add_db(p)
    return p


def run(args) -> int:
    with Store(args.db) as store:
        store.verify()  # a store being (re)built is read through once: damage is named before anything is added
        print(seed.load(store).message(store))
    return 0
