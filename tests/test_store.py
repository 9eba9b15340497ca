"""The DuckDB store on real files: schema and migrations, all-or-nothing imports, dedupe, the
field registry, filters (and attempts to smuggle SQL through them), derived metrics, deleting an
import, and the bundled seed data."""
from __future__ import annotations

import re

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from engine import run_ids
from engine import store as store_mod
from engine.derived import Settings, parse_gpu_prices
from engine.fields import CANONICAL_NAMES, Field
from engine.store import SCHEMA_VERSION, Store, StoreError


def runs_df(n=6, **over) -> pd.DataFrame:
    df = pd.DataFrame({
        "task": ["t1", "t1", "t2", "t2", "t2", "t1"][:n],
        "model": [f"m{i % 3}" for i in range(n)],
        "hardware": (["H100", "B200"] * 3)[:n],
        "num_gpus": [1, 2, 4, 1, 2, 8][:n],
        "batch_size": [1, 8, 64, 256, 8, 1][:n],
        "work_unit": ["token"] * n,
        "throughput": [100.0, 200.0, 400.0, 800.0, 50.0, 25.0][:n],
        "energy_j": [0.5, 0.4, 0.3, 0.2, 0.9, 1.2][:n],
    })
    for k, v in over.items():
        df[k] = v
    return df


def tables(path) -> dict:
    with Store(path) as s:
        return {t: s.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("runs", "imports", "fields")}


# -- schema & migrations -------------------------------------------------------------------

def test_new_store_has_schema_and_canonical_registry(empty_db):
    with Store(empty_db) as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.count() == 0
        names = [f.name for f in s.fields()]
        assert set(CANONICAL_NAMES) <= set(names)
        assert s.field("energy_j").unit == "J" and s.field("energy_j").direction == "min"
        assert s.field("throughput").direction == "max"


def test_a_bare_duckdb_file_is_brought_to_the_current_version(empty_db):
    duckdb.connect(str(empty_db)).close()  # version 0: a DuckDB file with no tables
    with Store(empty_db) as s:
        assert s.schema_version() == SCHEMA_VERSION
        s.add_runs(runs_df(), source="t", kind="test")
        assert s.count() == 6


def _stored(s: Store) -> set[str]:
    return {r[0] for r in s.execute("SELECT column_name FROM information_schema.columns "
                                    "WHERE table_name = 'runs' AND is_generated = 'NEVER'").fetchall()}


def test_a_new_store_keeps_no_storage_for_the_columns_its_runs_leave_empty(empty_db):
    """DuckDB writes every stored column for every row inserted, so the canonical columns no run
    fills are virtual (read as NULL) until an import or a quality attach brings values; the
    fields keep their order, and an undone attach leaves the column empty again."""
    from engine import quality

    written = {"run_id", "source", "status", "import_id", "imported_at"}
    with Store(empty_db) as s:
        order = [f.name for f in s.fields()]
        assert _stored(s) == written
        s.add_runs(runs_df(), source="a", kind="test")
        assert _stored(s) == written | set(runs_df().columns)
        assert s.query(["power_w", "accuracy"], include_failed=True).isna().all().all()
        later = s.add_runs(runs_df(2, power_w=[300.0, 350.0], model=["p0", "p1"]), source="b", kind="test")
        assert later.added == 2 and "power_w" in _stored(s)
        assert sorted(s.query(["power_w"]).power_w.dropna()) == [300.0, 350.0] and s.count() == 8
        res = quality.attach(s, pd.DataFrame({"model": ["m1"], "accuracy": [0.7]}))
        assert "accuracy" in _stored(s) and res.runs_updated == 2
        assert s.query(["model", "accuracy"], {"model": ["m1"]}).accuracy.tolist() == [0.7, 0.7]
        assert [f.name for f in s.fields()] == order
        s.delete_import(res.batch)
        assert s.query(["accuracy"]).accuracy.isna().all()
        assert s.execute("SELECT count(*) FROM runs WHERE power_w IS NULL AND energy_j IS NOT NULL").fetchall() == [(6,)]


def test_a_store_with_runs_keeps_its_columns_at_the_upgrade(empty_db, monkeypatch):
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 4)
    with Store(empty_db) as s:  # a version-4 store: every canonical column stored
        s.add_runs(runs_df(), source="t", kind="test")
        before = _stored(s)
    monkeypatch.undo()
    with Store(empty_db) as s:
        assert s.schema_version() == SCHEMA_VERSION and _stored(s) == before and "power_w" in before
        assert s.add_runs(runs_df(2, power_w=[1.0, 2.0], model=["p0", "p1"]), source="b", kind="test").added == 2
        assert s.count() == 8 and sorted(s.query(["power_w"]).power_w.dropna()) == [1.0, 2.0]


def test_an_older_file_is_migrated_forward_keeping_its_runs(empty_db, monkeypatch):
    with Store(empty_db) as s:
        s.add_runs(runs_df(), source="t", kind="test")

    def to_next(con):
        con.execute("ALTER TABLE runs ADD COLUMN gpu_hours DOUBLE")
        con.execute("UPDATE runs SET gpu_hours = num_gpus * 0.5")
        con.execute("INSERT INTO fields (name, role, dtype, unit, direction, description, canonical) "
                    "VALUES ('gpu_hours', 'metric', 'double', 'h', 'min', 'added by the next version', false)")

    nxt = store_mod.SCHEMA_VERSION + 1
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", nxt)
    monkeypatch.setitem(store_mod.MIGRATIONS, nxt, to_next)
    with Store(empty_db) as s:
        assert s.schema_version() == nxt
        assert s.count() == 6
        assert s.field("gpu_hours").unit == "h"
        assert sorted(s.query(["gpu_hours"])["gpu_hours"]) == [0.5, 0.5, 1.0, 1.0, 2.0, 4.0]


def test_a_failing_migration_leaves_the_file_at_its_old_version(empty_db, monkeypatch):
    with Store(empty_db) as s:
        s.add_runs(runs_df(), source="t", kind="test")

    def broken(con):
        con.execute("ALTER TABLE runs ADD COLUMN half_done DOUBLE")
        raise RuntimeError("boom")

    now = store_mod.SCHEMA_VERSION
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", now + 1)
    monkeypatch.setitem(store_mod.MIGRATIONS, now + 1, broken)
    with pytest.raises(RuntimeError):
        Store(empty_db)
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", now)
    with Store(empty_db) as s:
        assert s.schema_version() == now
        cols = s.execute("SELECT column_name FROM information_schema.columns WHERE table_name='runs'").fetchall()
        assert ("half_done",) not in cols
        assert s.count() == 6


def test_a_version_1_file_learns_which_metrics_are_quality(empty_db, monkeypatch):
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 1)
    with Store(empty_db) as s:  # what a version-1 Paretoscope wrote: no quality column in the registry
        s.add_runs(runs_df(), source="t", kind="test")
        for name, unit in (("agreement", ""), ("mmlu", "%")):
            s.execute(f"ALTER TABLE runs ADD COLUMN {name} DOUBLE")
            s.execute("INSERT INTO fields VALUES (?, 'metric', 'double', ?, 'max', '', false)", [name, unit])
        assert s.schema_version() == 1
    monkeypatch.undo()
    with Store(empty_db) as s:
        assert s.schema_version() == store_mod.SCHEMA_VERSION
        assert {f.name for f in s.metrics() if f.quality} == {"accuracy", "agreement", "mmlu"}
        assert s.count() == 6
        s.add_runs(runs_df().assign(task="other"), source="t2", kind="test")  # the registry still takes new runs


def test_a_newer_file_is_refused(empty_db):
    with Store(empty_db) as s:
        s.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer"):
        Store(empty_db)


# -- writing -------------------------------------------------------------------------------

def test_add_runs_is_all_or_nothing(empty_db):
    with Store(empty_db) as s:
        s.add_runs(runs_df(2), source="first", kind="test")
    bad = runs_df(6, batch_size=["1", "2", "3", "four", "5", "6"], tokens_per_j=np.arange(6.0))
    extra = [Field("tokens_per_j", "metric", "double", "token/J", "max")]
    with Store(empty_db) as s, pytest.raises(Exception):
        s.add_runs(bad, source="bad", kind="test", extra_fields=extra)
    with Store(empty_db) as s:
        assert s.count() == 2
        assert len(s.imports()) == 1
        assert not s.has_field("tokens_per_j")  # the new column went with the rollback
        cols = [r[0] for r in s.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name='runs'").fetchall()]
        assert "tokens_per_j" not in cols


def test_a_failed_insert_says_why_and_leaves_the_connection_as_it_was(empty_db):
    """The insert runs unordered (Store._unordered); when it fails, the error is its own, not
    DuckDB's refusal of the reset inside the aborted transaction, and the store's connection keeps
    insertion order afterwards."""
    with Store(empty_db) as s:
        s.add_runs(runs_df(2), source="first", kind="test")
        with pytest.raises(duckdb.ConversionException, match="'four'"):
            s.add_runs(runs_df(6, batch_size=["1", "2", "3", "four", "5", "6"]), source="bad", kind="test")
        assert s.execute("SELECT current_setting('preserve_insertion_order')").fetchall() == [(True,)]
        assert s.count() == 2


def test_a_store_held_alone_streams_runs_in_under_a_memory_limit_and_gives_it_back(empty_db):
    """The import command's store (alone=True) lowers DuckDB's memory limit, a setting of the whole
    database, while runs stream into an empty store (Store._streaming), and sets it back after the
    insert, and after a failed one, whose own error is the one raised. A store opened as the app
    opens it leaves the limit alone."""
    def limit(s):
        return s.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    with Store(empty_db, alone=True) as s:
        default = limit(s)
        with s.transaction(), s._streaming(True):
            assert limit(s) != default
        with pytest.raises(duckdb.ConversionException, match="'four'"):
            s.add_runs(runs_df(6, batch_size=["1", "2", "3", "four", "5", "6"]), source="bad", kind="test")
        assert limit(s) == default and s.count() == 0
        assert s.add_runs(runs_df(6), source="good", kind="test").added == 6
        assert limit(s) == default
    with Store(empty_db) as s, s.transaction(), s._streaming(True):
        assert limit(s) == default


def test_unknown_columns_and_bad_status_are_refused(empty_db):
    with Store(empty_db) as s:
        with pytest.raises(StoreError, match="no field definition"):
            s.add_runs(runs_df(3, mystery=[1, 2, 3]), source="t", kind="test")
        with pytest.raises(StoreError, match="status"):
            s.add_runs(runs_df(3, status=["ok", "weird", "ok"]), source="t", kind="test")
        with pytest.raises(StoreError, match="derived"):
            s.add_runs(runs_df(3, cost_usd=[1.0, 2.0, 3.0]), source="t", kind="test")
        assert s.count() == 0


def test_dedupe_by_content_run_id_and_file_hash(empty_db):
    with Store(empty_db) as s:
        first = s.add_runs(runs_df(), source="a", kind="test", file_hash="h1")
        assert (first.added, first.duplicates) == (6, 0)
        again = s.add_runs(runs_df(), source="b", kind="test")  # same content, no run_id: same hashes
        assert (again.added, again.duplicates) == (0, 6)
        same_file = s.add_runs(runs_df(3, energy_j=[9.0, 9.1, 9.2]), source="c", kind="test", file_hash="h1")
        assert same_file.already_imported and same_file.added == 0
        ids = runs_df(3, run_id=["r1", "r2", "r1"], energy_j=[1.0, 2.0, 3.0])  # r1 twice in one batch
        res = s.add_runs(ids, source="d", kind="test")
        assert (res.added, res.duplicates) == (2, 1)
        res = s.add_runs(runs_df(1, run_id=["r2"], energy_j=[5.0]), source="e", kind="test")
        assert res.added == 0
        assert s.count() == 8


def test_a_first_import_stores_a_run_the_file_holds_twice_once(empty_db):
    """A new store skips counting the ids of a first import when none are alike
    (run_ids.surely_distinct); a file that holds one run twice still stores it once."""
    df = runs_df(3)
    twice = pa.Table.from_pandas(pd.concat([df, df.iloc[[0]]]), preserve_index=False)  # the first run again, last
    ids = run_ids.content_ids(twice)
    assert ids[0] == ids[3] and not run_ids.surely_distinct(ids)
    assert run_ids.surely_distinct(ids.take([0, 1, 2]))
    assert not run_ids.surely_distinct(pa.array(["a" * 10 + "b" * 10, "a" * 10 + "b" * 10]))  # two alike, 20 characters each
    assert not run_ids.surely_distinct(ids.slice(1))  # read from an offset: counted
    with Store(empty_db) as s:
        res = s.add_runs(twice, source="a", kind="test")
        assert (res.added, res.duplicates, s.count()) == (3, 1, 3)
        res = s.add_runs(twice.slice(1), source="b", kind="test")
        assert (res.added, res.duplicates, s.count()) == (0, 3, 3)


def test_content_ids_depend_on_values_and_columns_not_on_order(empty_db):
    """The same run gets the same id from a DataFrame or an Arrow table, in any column or row
    order; a changed value, a missing value, a number written as text or a value moved to another
    column gives another id; -0.0 is 0.0."""
    base = runs_df(3)
    with Store(empty_db) as s:
        s.add_runs(base, source="a", kind="test")
        ids = dict(s.execute("SELECT energy_j, run_id FROM runs").fetchall())
        assert all(len(i) == run_ids.HEX_DIGITS and int(i, 16) >= 0 for i in ids.values())
        shuffled = pa.Table.from_pandas(base.iloc[::-1, ::-1], preserve_index=False)
        assert (s.add_runs(shuffled, source="b", kind="test").added, s.count()) == (0, 3)
        variants = [base.assign(energy_j=[0.5, 0.4, 0.30000000000000004]),  # one value, the last bit
                    base.assign(energy_j=[0.5, 0.4, None]),
                    base.assign(model=["m0", "m1", "M2"]),
                    base.assign(work_unit=[None, "token", "token"]),
                    base.assign(precision=["", None, None]).iloc[:1]]
        for v in variants:
            assert s.add_runs(v, source="v", kind="test").added == 1
    zero = pd.DataFrame({"a": [0.0, -0.0, 1.0, None], "b": ["x", "x", "x", "x"]})
    ids = run_ids.content_ids(pa.Table.from_pandas(zero, preserve_index=False)).to_pylist()
    assert ids[0] == ids[1] and len(set(ids)) == 3
    as_text = run_ids.content_ids(pa.table({"a": ["0.0", "1.0"], "b": ["x", "x"]})).to_pylist()
    swapped = run_ids.content_ids(pa.table({"a": ["x", "x"], "b": [0.0, 1.0]})).to_pylist()
    assert not set(as_text + swapped) & set(ids)
    odd = pa.table({"shape": [[1, 2], [1, 2], [2, 1], None], "n": pa.array([2**64 - 1, 2**64 - 1, 0, 0], pa.uint64())})
    ids = run_ids.content_ids(odd).to_pylist()  # lists (as text) and unsigned values past 2^63 hash too
    assert ids[0] == ids[1] and len(set(ids)) == 3


def test_content_ids_are_the_same_in_every_release():
    """Ids are stored: a re-import finds its runs by them, so the hash may never change (these
    values were computed when the scheme was made; a changed hash breaks every store's dedupe)."""
    table = pa.table({"model": ["org/m", None], "batch_size": [8, None], "energy_j": [0.25, -0.0],
                      "ok": [True, False]})
    golden = ["5773c0ca6f72192a7c13", "73dabb3a3d9f9f7655f7"]
    assert run_ids.content_ids(table).to_pylist() == golden
    assert run_ids.content_ids(pa.concat_tables([table.slice(0, 1), table.slice(1)])).to_pylist() == golden  # chunks
    assert run_ids.content_ids(table.slice(1)).to_pylist() == golden[1:]  # a slice (buffers read from an offset)


def test_a_run_s_id_does_not_depend_on_where_it_sits_in_a_large_table():
    """A large table is hashed in blocks of rows on several threads, from Arrow chunks of any
    size: each row's id is the id it gets alone, wherever the block, chunk and slice edges fall."""
    rng = np.random.default_rng(7)
    n = 150_001  # three blocks, hashed in parallel
    energy = rng.normal(size=n)
    energy[::97] = np.nan
    energy[::89] = -0.0
    table = pa.table({"energy_j": pa.array(energy, mask=rng.random(n) < 0.1),
                      "batch_size": pa.array(rng.integers(1, 9, n), mask=rng.random(n) < 0.1),
                      "ok": pa.array(rng.random(n) < 0.5),
                      "model": pa.array([f"m{i}" for i in rng.integers(0, 50, n)], mask=rng.random(n) < 0.1)})
    ids = run_ids.content_ids(table).to_pylist()
    cuts = [0, 1, 65_535, 65_537, 100_000, 131_073, n]
    chunked = pa.concat_tables([table.slice(a, b - a) for a, b in zip(cuts, cuts[1:])])
    assert chunked.column("model").num_chunks == len(cuts) - 1
    assert run_ids.content_ids(chunked).to_pylist() == ids
    assert run_ids.content_ids(chunked.slice(30_000, 110_000)).to_pylist() == ids[30_000:140_000]
    picked = [0, 65_535, 65_536, 131_072, n - 1]
    assert [run_ids.content_ids(table.slice(i, 1)).to_pylist()[0] for i in picked] == [ids[i] for i in picked]
    rows = {tuple("NaN" if v != v else v for v in r.values()) for r in table.to_pylist()}  # NaN is one value
    assert len(set(ids)) == len(rows)  # distinct runs, distinct ids


def test_a_store_keyed_by_md5_still_finds_its_runs_after_the_upgrade(empty_db, monkeypatch):
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", 3)
    with Store(empty_db) as s:  # a version-3 store: runs keyed by md5 of their values' text
        s.add_runs(runs_df(), source="t", kind="test")
        s.execute(f"UPDATE runs SET run_id = {run_ids.legacy_sql(list(runs_df().columns))}")
    monkeypatch.undo()
    with Store(empty_db) as s:
        assert s.schema_version() == SCHEMA_VERSION
        again = s.add_runs(runs_df(), source="another file", kind="test")
        assert (again.added, again.duplicates, s.count()) == (0, 6, 6)
        new = s.add_runs(runs_df(energy_j=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), source="new", kind="test")
        assert (new.added, s.count()) == (6, 12)
        assert s.add_runs(runs_df(energy_j=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), source="x", kind="test").added == 0
    with Store(empty_db.parent / "new.duckdb") as s:  # a new store has no md5 keys to look for
        assert not s.execute("SELECT * FROM meta WHERE key = 'md5_run_ids'").fetchall()


def test_extra_fields_are_registered_with_unit_and_direction(empty_db):
    extra = [Field("tokens_per_j", "metric", "double", "token/J", "max", "efficiency"),
             Field("kv_cache", "config", "text")]
    with Store(empty_db) as s:
        s.add_runs(runs_df(3, tokens_per_j=[1.0, 2.0, 3.0], kv_cache=["fp8", "bf16", "fp8"]),
                   source="t", kind="test", extra_fields=extra)
        f = s.field("tokens_per_j")
        assert (f.unit, f.direction, f.role) == ("token/J", "max", "metric")
        assert "tokens_per_j" in [m.name for m in s.metrics()]
        assert s.distinct("kv_cache") == ["bf16", "fp8"]
        s.set_direction("tokens_per_j", "min")
        assert s.field("tokens_per_j").direction == "min"
        with pytest.raises(StoreError):
            s.set_direction("energy_j", "max")  # canonical directions are fixed


# -- reading -------------------------------------------------------------------------------

def test_filters_in_lists_and_ranges(empty_db):
    df = runs_df()
    with Store(empty_db) as s:
        s.add_runs(df, source="t", kind="test")
        assert s.count({"task": ["t1"]}) == (df.task == "t1").sum()
        assert s.count({"hardware": ["H100", "B200"], "task": "t2"}) == 3
        assert s.count({"batch_size": {"min": 8}}) == (df.batch_size >= 8).sum()
        assert s.count({"batch_size": {"min": 8, "max": 64}}) == df.batch_size.between(8, 64).sum()
        assert s.count({"energy_j": {"max": 0.4}, "task": ["t1"]}) == 1
        assert s.count({"task": []}) == 0
        got = s.query(["model", "energy_j"], {"num_gpus": {"max": 2}}, order_by="energy_j")
        assert got["energy_j"].tolist() == sorted(df.loc[df.num_gpus <= 2, "energy_j"])
        assert s.value_range("throughput", {"task": ["t2"]}) == (50.0, 800.0)


@pytest.mark.parametrize("name", [
    "task; DROP TABLE runs; --", 'task" OR 1=1 --', "rowid", "TASK", "nonexistent", "task)",
])
def test_injection_through_filter_names_is_refused(empty_db, name):
    with Store(empty_db) as s:
        s.add_runs(runs_df(), source="t", kind="test")
        with pytest.raises((StoreError, ValueError)):
            s.count({name: ["x"]})
        with pytest.raises((StoreError, ValueError)):
            s.query(["model"], order_by=name)
        with pytest.raises((StoreError, ValueError)):
            s.query([name])
        assert s.count() == 6


@pytest.mark.parametrize("value", ["t1' OR '1'='1", "t1'); DROP TABLE runs; --", "%", "*"])
def test_injection_through_filter_values_is_harmless(empty_db, value):
    with Store(empty_db) as s:
        s.add_runs(runs_df(), source="t", kind="test")
        assert s.count({"task": [value]}) == 0
        assert s.count({"batch_size": {"min": 1}}) == 6
        assert s.count() == 6


def test_unsafe_extra_field_names_are_refused(empty_db):
    with Store(empty_db) as s:
        bad = Field('x"; DROP TABLE runs; --', "metric", "double")
        with pytest.raises(StoreError):
            s.add_runs(runs_df(2).assign(**{bad.name: [1.0, 2.0]}), source="t", kind="test", extra_fields=[bad])
        assert s.count() == 0


def test_derived_metrics_follow_the_settings(empty_db):
    df = runs_df()
    with Store(empty_db, settings=Settings(price_per_gpu_hour=3.6, carbon_g_per_kwh=500.0)) as s:
        s.add_runs(df, source="t", kind="test")
        got = s.query(["num_gpus", "throughput", "energy_j", "cost_usd", "carbon_g"], order_by="energy_j")
        exp = df.sort_values("energy_j")
        np.testing.assert_allclose(got["cost_usd"], exp.num_gpus * 3.6 / 3600 / exp.throughput)
        np.testing.assert_allclose(got["carbon_g"], exp.energy_j / 3.6e6 * 500.0)
        assert {"cost_usd", "carbon_g"} <= {m.name for m in s.metrics()}
        cheap = s.count({"cost_usd": {"max": float(got["cost_usd"].median())}})
        assert cheap == (got["cost_usd"] <= got["cost_usd"].median()).sum()
    with Store(empty_db, settings=Settings(price_per_gpu_hour=7.2)) as s:
        doubled = s.query(["cost_usd"], order_by="energy_j")["cost_usd"]
        np.testing.assert_allclose(doubled, got["cost_usd"] * 2)



def test_cost_is_computed_at_each_hardware_s_own_price_where_one_is_set(empty_db):
    """One price for every GPU makes the faster GPU look cheaper whatever it costs: a B200 priced
    at its own rate changes its runs' cost_usd, and only theirs. A crafted hardware name is data."""
    df = runs_df()
    crafted = "H100' OR 1=1; DROP TABLE runs; --"
    prices = (("B200", 6.0), (crafted, 0.0))
    with Store(empty_db) as s:
        s.add_runs(df, source="t", kind="test")
    with Store(empty_db, settings=Settings(price_per_gpu_hour=3.6, gpu_prices=prices)) as s:
        got = s.query(["hardware", "num_gpus", "throughput", "energy_j", "cost_usd"], order_by="energy_j")
        price = np.where(got["hardware"] == "B200", 6.0, 3.6)
        np.testing.assert_allclose(got["cost_usd"], got.num_gpus * price / 3600 / got.throughput)
        cheap = s.count({"cost_usd": {"max": float(got["cost_usd"].median())}})  # filters see the same prices
        assert cheap == (got["cost_usd"] <= got["cost_usd"].median()).sum()
        assert s.count() == len(df)


def test_gpu_prices_are_read_from_text_with_one_sentence_per_mistake():
    assert parse_gpu_prices("B200=5.5, H100 = 2.9\nA100=0") == (("B200", 5.5), ("H100", 2.9), ("A100", 0.0))
    assert parse_gpu_prices(["NVIDIA H100 80GB HBM3=3"]) == (("NVIDIA H100 80GB HBM3", 3.0),)
    assert parse_gpu_prices(["B200=5.5,H100=3", "A100=1"]) == (("B200", 5.5), ("H100", 3.0), ("A100", 1.0))
    assert parse_gpu_prices("") == ()
    for text, words in (("B200", "write HARDWARE=PRICE"), ("=3", "write HARDWARE=PRICE"),
                        ("B200=x", "'x' is not a number"), ("B200=-1", "'-1' is not a number"),
                        ("B200=inf", "'inf'"), ("B200=1, B200=2", "given twice")):
        with pytest.raises(ValueError, match=words):
            parse_gpu_prices(text)

def test_delete_import_removes_only_that_batch(empty_db):
    with Store(empty_db) as s:
        a = s.add_runs(runs_df(3), source="a", kind="test")
        b = s.add_runs(runs_df(6).iloc[3:], source="b", kind="test")
        assert s.count() == 6
        assert s.delete_import(b.import_id) == 3
        assert s.count() == 3 and s.imports()["import_id"].tolist() == [a.import_id]
        with pytest.raises(StoreError, match="No import"):
            s.delete_import("nope")


# -- the bundled seed ----------------------------------------------------------------------

def test_seed_loads_every_run_mapped_onto_canonical_columns(seeded_db):
    with Store(seeded_db) as s:
        assert s.count() == 2017 and s.count({"source": ["mlenergy-v3"]}) == 1858
        assert s.count({"source": ["qwen2-quantization-docs"]}) == 159
        s.execute("DELETE FROM runs WHERE source <> 'mlenergy-v3'")  # the ML.ENERGY mapping below
        assert sorted(s.distinct("task")) == sorted([
            "gpqa", "image-chat", "lm-arena-chat", "sourcegraph-fim", "text-to-image", "text-to-video", "video-chat"])
        units = dict(s.execute("SELECT task, any_value(work_unit) FROM runs GROUP BY task").fetchall())
        assert units["text-to-image"] == "image" and units["text-to-video"] == "video" and units["gpqa"] == "token"
        assert s.distinct("work_unit") == ["image", "token", "video"]
        assert set(s.distinct("hardware")) == {"H100", "B200"}
        assert set(s.distinct("precision")) >= {"bfloat16", "fp8"}
        everywhere = ["energy_j", "throughput", "power_w", "precision", "batch_size", "hardware", "num_gpus",
                      "params_b", "model", "work_unit"]
        counts = s.execute("SELECT " + ", ".join(f'count("{c}")' for c in everywhere) + " FROM runs").fetchall()[0]
        assert dict(zip(everywhere, counts)) == {c: 1858 for c in everywhere}
        token = {"work_unit": ["token"]}
        for c in ("itl_ms", "itl_p90_ms", "itl_p95_ms", "itl_p99_ms"):
            assert s.count({**token, c: {"min": 0}}) == s.count(token) > 0
        # fields with no canonical name are kept as extra, registered fields
        for extra in ("avg_output_len", "energy_per_request_j", "tensor_parallel", "inference_steps", "num_frames"):
            assert s.has_field(extra) and extra not in CANONICAL_NAMES
            assert s.count({extra: {"min": 0}}) > 0
        assert s.field("energy_per_request_j").unit == "J"
        assert s.imports()["kind"].tolist() == ["seed", "seed", "quality"]  # published figures: one undoable batch


def test_reading_a_store_that_is_not_there_names_the_command_that_builds_it(tmp_path):
    """A read-only open of a missing file creates nothing and says how to build the store there,
    with its path, as the CLI and the app say it."""
    missing = tmp_path / "none" / "runs.duckdb"
    said = f"No store at {missing}; run `python -m engine init --db {missing}` first."
    with pytest.raises(StoreError, match="^" + re.escape(said) + "$"):
        Store(missing, read_only=True)
    assert not missing.parent.exists()
