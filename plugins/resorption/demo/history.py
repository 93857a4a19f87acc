"""A plausible history for the demonstration: every version of every site since it was entered.

The history tables are written by triggers in real use, stamped with the clock. The
generator cannot use them (its dates hang on `AS_OF`, and a rerun must give the same
rows), so it pauses them for its transaction and writes the versions itself:

- a site is created (`created_at`) with an earlier population; its population changes
  at a few counts, the last one on the day of its live `population_updated_at`;
- a census done shows as none before its date, then done;
- a closed site was open until its closing (on its live `updated_at`);
- a "still accurate" confirmation comes last, changing only `confirmed_at`.

Versions chain without gaps or overlaps, the last one is open and equals the live row,
column for column. A small plan per version (when, which population factor, which
parts reverted) is drawn in Python and streamed with COPY; one INSERT … SELECT then
builds the rows from the live sites, so that 100,000 sites stay quick.
"""

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from resorption import statements
from resorption.demo import bulk, draws
from resorption.demo.site_row import PHASES
from resorption.demo.words import AUTHOR, PREFIX

SQL = statements.load("demo_history")
HISTORY_TRIGGERS = (
    ("sites", "sites_history"),
    ("actions", "actions_history"),
    ("action_indicators", "action_indicators_history"),
    ("action_finances", "action_finances_history"),
)
PLAN_COLUMNS = (
    "site_id",
    "seq",
    "valid_from",
    "valid_to",
    "factor",
    "counted_on",
    "census_reset",
    "reopened",
    "unconfirmed",
)

# Counts scaled by a version's factor (SQL.scaled_count).
SCALED = (
    "population_women",
    "population_minors",
    "population_girls",
    "minors_0_3",
    "minors_3_6",
    "minors_6_12",
    "minors_12_16",
    "minors_16_18",
    "minors_in_school",
    "dwellings_caravans",
    "dwellings_huts",
    "dwellings_tents",
    "dwellings_cars",
    "dwellings_mattresses",
)

# What the census and closing columns were before the census or the closing.
CENSUS = {"census_status": SQL.no_census, "census_at": sql.NULL, "census_by": sql.NULL}
REOPENED = {
    "status": SQL.open_status,
    "closed_at": sql.NULL,
    "closed_with_solutions": sql.NULL,
    "closing_context": sql.NULL,
}


def pause_history(conn: psycopg.Connection) -> None:
    """Disable the history triggers for the generator's transaction (they come back with it)."""
    for table, trigger in HISTORY_TRIGGERS:
        conn.execute(
            SQL.disable_trigger.format(
                table=sql.Identifier("resorption", table), trigger=sql.Identifier(trigger)
            )
        )


def resume_history(conn: psycopg.Connection) -> None:
    """Enable the history triggers again."""
    for table, trigger in HISTORY_TRIGGERS:
        conn.execute(
            SQL.enable_trigger.format(
                table=sql.Identifier("resorption", table), trigger=sql.Identifier(trigger)
            )
        )


def write_history(conn: psycopg.Connection, seed: int) -> None:
    """Every version of the demonstration's sites, and the first version of its actions and of
    their results."""
    # A generator of its own: the history never shifts the draws of the other steps.
    rng = random.Random(f"{seed}:history")
    sites = conn.execute(SQL.demo_sites, (PREFIX + "%",)).fetchall()
    conn.execute(SQL.stage_plans)
    bulk.copy_rows(conn, "demo_versions", PLAN_COLUMNS, _plans(rng, sites), schema=None)
    columns = _columns(conn, "sites_history")
    conn.execute(SQL.jit_off)
    conn.execute(_insert_sites(columns))
    action_columns = sql.SQL(", ").join(map(sql.Identifier, _columns(conn, "actions_history")))
    conn.execute(SQL.insert_action_versions.format(c=action_columns), (PREFIX + "%",))
    for history, statement in (
        ("action_indicators_history", SQL.insert_indicator_versions),
        ("action_finances_history", SQL.insert_finance_versions),
    ):
        result_columns = sql.SQL(", ").join(map(sql.Identifier, _columns(conn, history)))
        conn.execute(statement.format(c=result_columns), (PREFIX + "%",))


def _plans(rng: random.Random, sites: Sequence[tuple]) -> Iterator[tuple]:
    """The plan of every version of every site, in site then time order."""
    for site in sites:
        yield from _site_plan(rng, *site)


def _site_plan(
    rng: random.Random,
    site_id: int,
    created: datetime,
    updated: datetime,
    confirmed: datetime | None,
    closed_at: date | None,
    census_done: bool,
    census_at: date | None,
    counted: bool,
    counted_on: date | None,
) -> Iterator[tuple]:
    """One site's versions: (site, seq, from, to, factor, counted on, census reset, reopened, unconfirmed)."""

    def moment(day: date | None) -> datetime | None:
        """When an event of that day was recorded: the last update on its day, else office hours."""
        if day is None:
            return None
        stamp = updated if day == updated.date() else draws.stamp(rng, day)
        return stamp if created < stamp <= updated else None

    closing = updated if closed_at is not None and updated > created else None
    census = moment(census_at) if census_done else None
    # The counts before the last one: the population moved by up to a third between them.
    counts: list[datetime] = []
    last_count = moment(counted_on) if counted else None
    if last_count is not None and last_count - created > timedelta(days=45):
        span = (last_count - created).total_seconds()
        earlier = draws.weighted(rng, ((0, 45), (1, 35), (2, 20)))
        counts = sorted(created + timedelta(seconds=rng.uniform(0.1, 0.9) * span) for _ in range(earlier))
        counts.append(last_count)
    factors = [1.0]
    for _ in counts:
        factors.insert(0, factors[0] * rng.choice((rng.uniform(0.6, 0.92), rng.uniform(1.08, 1.35))))
    confirmation = confirmed if confirmed is not None and confirmed > created else None

    starts = sorted({created, *counts, *(s for s in (census, closing, confirmation) if s is not None)})
    for seq, start in enumerate(starts):
        stage = sum(1 for c in counts if c <= start)
        end = starts[seq + 1] if seq + 1 < len(starts) else None
        factor = factors[stage]
        yield (
            site_id,
            seq,
            start,
            end,
            factor,
            (counts[stage - 1] if stage else created).astimezone(UTC).date(),
            census is not None and start < census,
            closing is not None and start < closing,
            confirmation is not None and start < confirmation,
        )


def _columns(conn: psycopg.Connection, history: str) -> list[str]:
    """The columns a history table shares with its live table, in table order."""
    row = conn.execute(
        SQL.history_columns,
        (f"resorption.{history.removesuffix('_history')}", f"resorption.{history}"),
    ).fetchone()
    return [name.strip().strip('"') for name in row[0].split(",")]


def _insert_sites(columns: list[str]) -> sql.Composed:
    """The INSERT building each version from its live site and its plan."""
    overrides: dict[str, sql.Composable] = {
        "population_total": SQL.scaled_total,
        "population_households": SQL.scaled_households,
        "population_updated_at": SQL.counted_on,
        **{c: SQL.scaled_count.format(sql.Identifier(c)) for c in SCALED},
    }
    expressions = []
    for column in columns:
        expression: sql.Composable = SQL.live_column.format(sql.Identifier(column))
        if column in overrides:
            # Only the versions before the last count differ from the live population.
            expression = SQL.counted.format(live=expression, before=overrides[column])
        elif column in CENSUS:
            expression = SQL.census_reset.format(before=CENSUS[column], live=expression)
        elif column in REOPENED:
            expression = SQL.reopened.format(before=REOPENED[column], live=expression)
        elif column == "confirmed_at":
            expression = SQL.unconfirmed
        elif column == "updated_at":
            expression = SQL.version_updated_at
        elif column in PHASES:
            expression = SQL.phase.format(e=expression)
        expressions.append(sql.SQL("{} AS {}").format(expression, sql.Identifier(column)))
    tracked = [c for c in columns if c in overrides or c in CENSUS or c in REOPENED or c in PHASES]
    tracked.append("confirmed_at")
    tracked = [c for c in columns if c in tracked]
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    return SQL.insert_site_versions.format(
        expressions=sql.SQL(", ").join(expressions),
        tracked=sql.SQL(", ").join(
            sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier(c)) for c in tracked
        ),
        names_array=sql.Literal(tracked),
        names=names,
        author=sql.Literal(AUTHOR),
    )
