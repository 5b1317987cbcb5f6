"""The table's model on its own (screens/widgets/tablemodel.py): columns sized from their
widest cell, rows by key in display order, in-place updates that report only what changed,
new rows put at their sorted place, and the index by key kept right through every change.

Pure: no app, no widget - the widget's redraws follow from what `update` reports, and
tests/screens/test_keyedtable.py and test_podtable.py cover the drawing."""

from __future__ import annotations

import pytest
from rich.text import Text

from installer.textsafe import display
from screens.widgets.tablefill import MAX_COLUMN_WIDTH
from screens.widgets.tablemodel import CELL_PADDING, TableModel, same_cell

COLUMNS = (("ns", "Namespace"), ("pod", "Pod"), ("phase", "Phase"))


def filled(*names: str) -> TableModel:
    model = TableModel()
    model.fill(COLUMNS, [(f"a/{n}", ("a", n, "Running")) for n in names])
    return model


def test_fill_sizes_each_column_by_its_widest_cell_or_label_capped_or_fixed():
    model = TableModel()
    model.fill(COLUMNS, [("a/x", ("a", "x" * 200, Text("Pending"))),
                         ("b/y", ("kube-system", "y", "\x1b[31m"))],
               widths={"phase": 3})
    assert [c.width for c in model.columns.values()] == [11, MAX_COLUMN_WIDTH, 3]
    assert model.columns["ns"].label.plain == "Namespace"
    assert model.width() == 11 + MAX_COLUMN_WIDTH + 3 + 3 * 2 * CELL_PADDING
    model.fill(COLUMNS, [("a/x", ("a", "x" * 200, "ok"))], max_width=50)
    assert model.columns["pod"].width == 50 and model.max_width == 50
    assert model.columns["phase"].width == len("Phase")  # no cell is wider than its label
    # A control is drawn escaped (datatext.cell_text), so it is measured escaped.
    model.fill(COLUMNS, [("a/x", ("a", "x", "\x1b" * 6))])
    assert model.columns["phase"].width == len(display("\x1b" * 6)) > 6


def test_rows_are_kept_in_order_by_key_and_a_short_row_is_padded():
    model = filled("p0", "p1")
    model.add([("a/p2", ("a",))])
    assert model.keys == ["a/p0", "a/p1", "a/p2"] and len(model) == 3
    assert model.cells["a/p2"] == ["a", None, None]
    assert [model.index_of(k) for k in model.keys] == [0, 1, 2]
    assert "a/p1" in model and "a/p9" not in model
    with pytest.raises(ValueError, match="already in the table"):
        model.add([("a/p1", ("a", "p1", "x"))])
    with pytest.raises(KeyError):
        model.index_of("a/p9")


def test_update_edits_in_place_and_reports_only_the_rows_that_changed():
    model = filled("p0", "p1", "p2")
    order, row = model.keys, model.cells["a/p1"]
    done = model.update(COLUMNS, {"a/p0": ("a", "p0", "Running"),
                                  "a/p1": ("a", "p1", Text("Failed", "red"))})
    assert done is not None and done.edited == ["a/p1"] and not done.added and not done.wider
    assert model.keys is order and model.cells["a/p1"] is row and row[2].plain == "Failed"
    # Text's own == ignores the style; a restyled cell is still a change.
    done = model.update(COLUMNS, {"a/p1": ("a", "p1", Text("Failed", "bold red"))})
    assert done is not None and done.edited == ["a/p1"]
    assert same_cell(Text("x", "red"), Text("x", "red"))
    assert not same_cell(Text("x", "red"), Text("x", "blue"))
    assert not same_cell("1", 1)


def test_update_puts_new_rows_at_their_sorted_place_and_grows_a_column():
    model = filled("p0", "p2", "p4")
    done = model.update(COLUMNS, {"a/p3": ("a", "p3", "Pending"),
                                  "a/p1": ("a", "p1-with-a-long-name", "Running")},
                        sort_by=("ns", "pod"))
    assert done is not None and done.added and done.wider and done.edited == []
    assert model.keys == ["a/p0", "a/p1", "a/p2", "a/p3", "a/p4"]
    assert [model.index_of(k) for k in model.keys] == [0, 1, 2, 3, 4]
    assert model.columns["pod"].width == len("p1-with-a-long-name")
    done = model.update(COLUMNS, {"a/p9": ("a", "p9", "x")})  # no sort: at the end
    assert done is not None and model.keys[-1] == "a/p9"


def test_update_refuses_an_empty_table_or_other_columns_and_changes_nothing():
    model = filled("p0")
    assert model.update(COLUMNS[:2], {"a/p0": ("a", "zzz")}) is None
    assert model.cells["a/p0"] == ["a", "p0", "Running"]
    model.clear()
    assert model.keys == [] and list(model.columns) == ["ns", "pod", "phase"]
    assert model.update(COLUMNS, {"a/p0": ("a", "p0", "Running")}) is None
    model.clear(columns=True)
    assert model.columns == {}


def test_sort_by_columns_or_a_key_function():
    model = TableModel()
    model.fill(COLUMNS, [("1", ("b", "y", "1")), ("2", ("a", "z", "2")),
                         ("3", ("b", "x", "3"))])
    assert model.index_of("1") == 0
    model.sort("ns", "pod")
    assert model.keys == ["2", "3", "1"] and model.index_of("1") == 2
    model.sort(key=lambda cells: cells[2], reverse=True)
    assert model.keys == ["3", "2", "1"] and model.index_of("3") == 0


# ---- the operator's filter and sort ------------------------------------------------------

def test_filter_narrows_to_rows_with_a_cell_containing_the_text_without_case():
    model = filled("gpu-node-1", "gpu-node-2", "cpu-node")
    model.set_filter("GPU")
    assert model.keys == ["a/gpu-node-1", "a/gpu-node-2"] and model.total == 3
    assert model.index_of("a/gpu-node-2") == 1
    model.set_filter("node-2")
    assert model.keys == ["a/gpu-node-2"]
    model.set_filter("unn")  # no match across cells: "...node-2" + "Running" joined by \0
    assert model.keys == ["a/gpu-node-1", "a/gpu-node-2", "a/cpu-node"]  # "Running"
    model.set_filter("2running")
    assert model.keys == []
    model.set_filter("")
    assert model.keys is model.order and len(model.keys) == 3


def test_an_update_keeps_the_filter_edited_rows_leave_or_join_new_rows_match_or_not():
    model = filled("b", "d")
    model.set_filter("pending")
    assert model.keys == []
    done = model.update(COLUMNS, {"a/b": ("a", "b", "Failed")})  # still filtered out
    assert done is not None and done.edited == ["a/b"] and not done.added
    assert model.keys == []
    done = model.update(COLUMNS, {"a/d": ("a", "d", "Pending")}, ("ns", "pod"))
    assert done is not None and done.added and model.keys == ["a/d"]
    done = model.update(COLUMNS, {"a/c": ("a", "c", Text("Pending")),
                                  "a/a": ("a", "a", "Running")}, ("ns", "pod"))
    assert model.keys == ["a/c", "a/d"]  # the new match at its sorted place, not the other
    assert model.order == ["a/a", "a/b", "a/c", "a/d"]
    model.update(COLUMNS, {"a/c": ("a", "c", "Running")}, ("ns", "pod"))
    assert model.keys == ["a/d"]
    model.set_filter("")
    assert model.keys == ["a/a", "a/b", "a/c", "a/d"]


def test_the_filter_survives_a_fill_and_a_clear():
    model = filled("x", "y")
    model.set_filter("y")
    model.fill(COLUMNS, [("a/y", ("a", "y", "Running")), ("a/z", ("a", "z", "Running"))])
    assert model.keys == ["a/y"] and model.filter_text == "y"
    model.clear()
    model.add([("a/yy", ("a", "yy", "Running")), ("a/q", ("a", "q", "Running"))])
    assert model.keys == ["a/yy"] and model.order == ["a/yy", "a/q"]


def test_sort_values_read_numbers_counts_and_ages_by_value_and_text_without_case():
    from screens.widgets.tablemodel import sort_value

    ordered = ["2", "10", "1/3", "2/2", "59s", "3m20s", "2h", "5d", "apple", "Banana", ""]
    values = [sort_value(c) for c in ordered]
    assert sorted(values) == [sort_value(c) for c in
                              ["1/3", "2", "2/2", "10", "59s", "3m20s", "2h", "5d", "apple",
                               "Banana", ""]]
    assert sort_value(Text("Banana")) == sort_value("banana") and sort_value(None) == (2, "")
    assert sort_value("5d") > sort_value("23h") > sort_value("90m")


def test_set_sort_orders_marks_the_header_and_keeps_new_and_edited_rows_in_place():
    model = TableModel()
    model.fill((("n", "N"), ("age", "Age")),
               [("a", ("a", "5m")), ("b", ("b", "30s")), ("c", ("c", "2d"))])
    grew = model.set_sort("age")
    assert model.keys == ["b", "a", "c"] and grew  # "Age ▲" is wider than any cell
    assert model.label_of(model.columns["age"]).plain == "Age ▲"
    assert model.label_of(model.columns["n"]).plain == "N"
    model.set_sort("age", reverse=True)
    assert model.keys == ["c", "a", "b"]
    assert model.label_of(model.columns["age"]).plain == "Age ▼"
    model.update((("n", "N"), ("age", "Age")), {"d": ("d", "10m"), "e": ("e", "1s")},
                 ("n",))  # the operator's sort wins over the screen's
    assert model.keys == ["c", "d", "a", "b", "e"]
    done = model.update((("n", "N"), ("age", "Age")), {"e": ("e", "3d")})
    assert done is not None and done.added and model.keys[0] == "e"
    model.set_filter("m")
    assert model.keys == ["d", "a"]
    model.update((("n", "N"), ("age", "Age")), {"f": ("f", "7m")})
    assert model.keys == ["d", "f", "a"]
    model.fill((("n", "N"), ("age", "Age")), [("x", ("x", "1m")), ("y", ("y", "9m"))])
    assert model.keys == ["y", "x"]  # sort and filter kept through a refill
    model.sort("n")  # the screen's own sort drops the operator's
    assert model.sort_column is None and model.keys == ["x", "y"]
