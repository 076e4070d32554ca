from picojepa.core.mdtable import row, table


def test_a_table_is_its_header_the_rule_and_one_line_per_row():
    assert table(["", "p50", "p90"], [["fused", 1.5, "2.0"], ["short"]]) == [
        "| | p50 | p90 |", "|---|---|---|", "| fused | 1.5 | 2.0 |", "| short |"]
    assert row(["**mean**", ""]) == "| **mean** | |"
