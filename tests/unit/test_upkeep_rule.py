"""When keyfob vacuums or analyses a table itself: autovacuum's rule, and the server's settings.

A user would notice the rule being wrong as a table that is never vacuumed (its look-ups
slowing down as dead rows pile up) or one vacuumed at every round for nothing.
"""

from __future__ import annotations

from keyfob.store.upkeep import Counts, Policy, command_for, wanted


def counts(rows: float, dead: int = 0, changed: int = 0, inserted: int = 0) -> Counts:
    return Counts("remotes", rows, dead, changed, inserted)


def test_a_table_is_vacuumed_past_threshold_plus_scale_times_its_rows() -> None:
    policy = Policy()  # 50 + 0.2 x rows
    assert command_for(counts(10_000, dead=2_050), policy) is None
    assert command_for(counts(10_000, dead=2_051), policy) == 'VACUUM "remotes"'


def test_a_table_is_analysed_past_its_own_threshold() -> None:
    policy = Policy()  # 50 + 0.1 x rows
    assert command_for(counts(10_000, changed=1_050), policy) is None
    assert command_for(counts(10_000, changed=1_051), policy) == 'ANALYZE "remotes"'
    both = command_for(counts(10_000, dead=3_000, changed=3_000), policy)
    assert both == 'VACUUM (ANALYZE) "remotes"'


def test_a_table_never_analysed_counts_as_empty() -> None:
    """``reltuples`` is -1 until the first vacuum or analysis: 51 changed rows are enough."""
    assert command_for(counts(-1, changed=51), Policy()) == 'ANALYZE "remotes"'
    assert command_for(counts(-1, changed=50), Policy()) is None


def test_inserts_alone_bring_a_vacuum_unless_the_server_turned_that_off() -> None:
    assert command_for(counts(0, inserted=1_001), Policy()) == 'VACUUM "remotes"'
    off = Policy(insert_threshold=-1)
    assert command_for(counts(0, inserted=1_000_000), off) is None


def test_the_servers_own_thresholds_are_used() -> None:
    policy = Policy.of(
        {
            "autovacuum_vacuum_threshold": "10",
            "autovacuum_vacuum_scale_factor": "0.01",
            "autovacuum_analyze_threshold": "5",
            "autovacuum_analyze_scale_factor": "0",
            "autovacuum_vacuum_insert_threshold": "-1",
        }
    )
    assert policy == Policy(10, 0.01, -1, 0.2, 5, 0)
    assert command_for(counts(1_000, dead=21), policy) == 'VACUUM "remotes"'


def test_vacuums_go_at_autovacuums_pace() -> None:
    """Its pause and its budget, or the plain VACUUM's where autovacuum says -1."""
    own = Policy.of({"autovacuum_vacuum_cost_delay": "20", "autovacuum_vacuum_cost_limit": "50"})
    assert (own.cost_delay_ms, own.cost_limit) == (20, 50)
    plain = {
        "autovacuum_vacuum_cost_delay": "-1",
        "autovacuum_vacuum_cost_limit": "-1",
        "vacuum_cost_delay": "0",
        "vacuum_cost_limit": "300",
    }
    assert (Policy.of(plain).cost_delay_ms, Policy.of(plain).cost_limit) == (0, 300)


def test_a_table_name_is_quoted() -> None:
    assert command_for(Counts('odd"name', 0, 0, 51, 0), Policy()) == 'ANALYZE "odd""name"'


def test_auto_keeps_the_tables_only_while_the_server_does_not() -> None:
    assert wanted("auto", autovacuum=False)
    assert not wanted("auto", autovacuum=True)
    assert wanted("on", autovacuum=True)
    assert not wanted("off", autovacuum=False)
