"""engine.filters, the one filter language: each kind read from and written back to its text, said
in words, and turned into SQL whose values stay parameters; the command line and Explore's links
read the same text the same way."""
from __future__ import annotations

import pandas as pd
import pytest

from engine import filters as F
from engine.cli import CliError
from engine.commands import parse_filters
from engine.explore import ViewState, state_from_params, state_to_params
from engine.store import Store


@pytest.fixture
def store():
    with Store(":memory:") as s:
        s.add_runs(pd.DataFrame({
            "task": ["t1", "t1", "t2", "t2", "t2", "t1"],
            "model": ["m0", "m1", "m2", "m0", "m1", "m2"],
            "hardware": ["H100", "B200", "H100", "B200", "H100", "B200"],
            "num_gpus": [1, 2, 4, 1, 2, 8],
            "batch_size": [1, 8, 64, 256, 8, 1],
            "work_unit": ["token"] * 6,
            "energy_j": [0.5, 0.4, 0.3, 0.2, 0.9, 1.2],
        }), source="t", kind="test")
        yield s


KINDS = [  # command-line text, kind, value, in words
    ("hardware=H100,B200", F.ONE_OF, ("H100", "B200"), "hardware is H100 or B200"),
    ("task=t1", F.ONE_OF, ("t1",), "task is t1"),
    ("model=m0,m1,m2", F.ONE_OF, ("m0", "m1", "m2"), "model is m0, m1 or m2"),
    ("batch_size=8..64", F.RANGE, (8, 64), "batch_size between 8 and 64"),
    ("batch_size>=8", F.RANGE, (8, None), "batch_size at least 8"),
    ("batch_size<=64", F.RANGE, (None, 64), "batch_size at most 64"),
    ("energy_j>0.25", F.ABOVE, 0.25, "energy_j more than 0.25"),
    ("energy_j<0.5", F.BELOW, 0.5, "energy_j less than 0.5"),
]


@pytest.mark.parametrize("text, kind, value, words", KINDS)
def test_each_kind_reads_writes_and_says_itself(store, text, kind, value, words):
    f = F.parse(text, store)
    assert (f.kind, f.value) == (kind, value)
    assert f.text() == text
    assert F.parse(f.text(), store) == f
    assert f.sentence() == words
    assert F.from_mapping(F.to_mapping([f])) == [f]  # the mapping code passes around holds the same filter
    if f.param() is not None:  # the link's form reads back to the same filter
        assert F.parse_param(f.column, f.param(), store) == f


def test_numbers_are_typed_and_written_plainly(store):
    assert F.parse("batch_size = 8.0 .. 64", store).value == (8, 64)
    assert F.parse("batch_size>=7.5", store).value == (7.5, None)  # a bound may fall between two whole numbers
    assert F.parse("energy_j=0.5", store).text() == "energy_j=0.5"
    assert F.parse("task=t1..t2", store).kind is F.ONE_OF  # two dots in a text value are the value's own


def test_the_sentence_of_several_filters(store):
    mapping = parse_filters(store, ["task=t1", "hardware=H100,B200", "batch_size>=8"])
    assert F.describe(mapping) == "task is t1, hardware is H100 or B200 and batch_size at least 8"
    assert F.describe({}) == "" and F.describe(None) == ""


def test_the_command_line_and_a_link_read_the_same_filter(store):
    assert F.parse("batch_size=8..64", store) == F.parse_param("batch_size", "8..64", store)
    assert F.parse("hardware=H100,B200", store) == F.parse_param("hardware", "H100,B200", store)
    cli = parse_filters(store, ["batch_size>=8", "batch_size<=64", "hardware=H100,B200"])
    link, notes = state_from_params(store, {"x": "energy_j", "batch_size": "8..64", "hardware": "H100,B200"})
    assert not notes and link.filters == cli == {"batch_size": {"min": 8, "max": 64}, "hardware": ["H100", "B200"]}
    back = state_to_params(ViewState(filters=cli))
    assert (back["batch_size"], back["hardware"]) == ("8..64", "H100,B200")
    assert state_from_params(store, {"batch_size": "8.."})[0].filters == parse_filters(store, ["batch_size>=8"])


@pytest.mark.parametrize("value", ["t1' OR '1'='1", "t1'); DROP TABLE runs; --", 'x" OR 1=1 --'])
def test_typed_values_stay_parameters(store, value):
    f = F.parse(f"task={value}", store)
    sql, params = f.sql(store.column_sql("task"))
    assert sql == '"task" IN (?)' and params == [value]
    where, params = store.where(F.to_mapping([f]))
    assert value not in where and params == [value]
    assert store.count(F.to_mapping([f])) == 0 and store.count() == 6
    sql, params = F.parse("energy_j<0.5", store).sql(store.column_sql("energy_j"))
    assert (sql, params) == ('"energy_j" < ?', [0.5])


def test_the_store_applies_every_kind(store):
    for text, expect in [("hardware=H100", 3), ("batch_size=8..64", 3), ("batch_size>=8", 4), ("batch_size<=8", 4),
                         ("energy_j>0.4", 3), ("energy_j<0.4", 2)]:
        assert store.count(parse_filters(store, [text])) == expect, text
    assert store.count({"energy_j": {"gt": 0.2, "lt": 0.9}}) == 3
    with pytest.raises(F.FilterError, match="'below'"):
        store.count({"energy_j": {"below": 1}})


@pytest.mark.parametrize("spec, words", [
    ("nonsense=1", "Filter 'nonsense=1' names an unknown column 'nonsense'."),
    ("batch_size>=many", "Filter 'batch_size>=many': 'many' is not a number."),
    ("energy_j<nan", "Filter 'energy_j<nan': 'nan' is not a finite number."),
    ("batch_size=1.5", "Filter 'batch_size=1.5': the column holds whole numbers, and '1.5' is not one."),
    ("batch_size=..", "Filter 'batch_size=..' gives neither bound; write LO..HI, LO.. or ..HI."),
    ("task", "Filter 'task' must look like COL=VALUE"),
])
def test_a_bad_filter_is_one_sentence_naming_it(store, spec, words):
    with pytest.raises(CliError) as e:
        parse_filters(store, [spec])
    assert str(e.value).startswith(words) and len(str(e.value).splitlines()) == 1


def test_a_value_list_and_a_range_on_one_column_are_refused(store):
    with pytest.raises(CliError, match="mixes a range with a value list for 'batch_size'"):
        parse_filters(store, ["batch_size=8", "batch_size>=4"])
    assert parse_filters(store, ["task=t1", "task=t2"]) == {"task": ["t1", "t2"]}  # lists add up


def test_the_command_line_says_which_filters_left_no_runs(tmp_path, capsys):
    from engine.cli import main

    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        s.add_runs(pd.DataFrame({"task": ["t1"], "batch_size": [8], "energy_j": [0.5]}), source="t", kind="test")
    assert main(["runs", "--db", str(db), "--filter", "task=t2", "--filter", "batch_size=1..64"]) == 0
    assert capsys.readouterr().out == "(no runs where task is t2 and batch_size between 1 and 64)\n"
