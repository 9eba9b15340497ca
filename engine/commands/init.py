"""`python -m engine init`: create the store and load the bundled seed data if it is empty."""
from __future__ import annotations

from engine import seed
from engine.commands import add_db
from engine.store import Store


def add_parser(sub):
    p = sub.add_parser("init", help="build the store from data/seed if empty")
    add_db(p)
    return p


def run(args) -> int:
    with Store(args.db) as store:
        if store.count() == 0:
            added = seed.load(store)
            print(f"Loaded {added} bundled runs into {store.path}.")
        else:
            print(f"{store.path} already holds {store.count()} runs; nothing to do.")
    return 0
