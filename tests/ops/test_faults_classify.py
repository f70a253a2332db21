"""The classification behind every database error response (app/db/faults.py) and the engine's
connect arguments (app/db/engine.py): plain unit checks, no server needed."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from app.core.config import DbPooler, Settings
from app.db.engine import connect_args
from app.db.faults import DatabaseUnavailable, Fault, classify, unavailable


def _wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    """How the ORM path sees an asyncpg error: DBAPIError(orig=adapter error caused by it)."""
    adapter = Exception(str(orig))
    adapter.__cause__ = orig
    return sa_exc.DBAPIError("SELECT 1", {}, adapter)


@pytest.mark.parametrize("error, fault", [
    (asyncpg.TooManyConnectionsError("too many connections for role"), Fault.UNAVAILABLE),  # 53300
    (asyncpg.AdminShutdownError("terminating connection due to administrator command"), Fault.UNAVAILABLE),
    (asyncpg.CannotConnectNowError("the database system is starting up"), Fault.UNAVAILABLE),
    (asyncpg.ProtocolViolationError("no more connections allowed (max_client_conn)"), Fault.UNAVAILABLE),  # PgBouncer
    (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), Fault.UNAVAILABLE),
    (asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"), Fault.UNAVAILABLE),
    (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), Fault.UNAVAILABLE),
    (ConnectionRefusedError(111, "Connect call failed"), Fault.UNAVAILABLE),
    (TimeoutError(), Fault.UNAVAILABLE),
    (sa_exc.TimeoutError("QueuePool limit reached"), Fault.UNAVAILABLE),
    (asyncpg.DeadlockDetectedError("deadlock detected"), Fault.RETRYABLE),
    (asyncpg.SerializationError("could not serialize access"), Fault.RETRYABLE),
    (asyncpg.CharacterNotInRepertoireError("invalid byte sequence"), Fault.BAD_INPUT),
    (asyncpg.UniqueViolationError("duplicate key"), None),
    (asyncpg.UndefinedColumnError("column does not exist"), None),  # a bug: 500, never a 503
    (asyncpg.InterfaceError("the server expects 2 arguments for this query, 3 were passed"), None),
    (RuntimeError("a bug"), None),
])
def test_classification(error, fault):
    assert classify(error) is fault
    assert classify(_wrapped(error)) is fault  # the same through SQLAlchemy's wrapping


def test_a_bug_raised_while_handling_a_lost_connection_is_still_a_bug():
    try:
        try:
            raise ConnectionResetError("lost")
        except ConnectionResetError:
            raise KeyError("bug in a handler")
    except KeyError as exc:
        assert classify(exc) is None


def test_unavailable_wraps_only_what_is_unavailable():
    lost = asyncpg.ConnectionDoesNotExistError("closed")
    wrapped = unavailable(lost)
    assert isinstance(wrapped, DatabaseUnavailable) and wrapped.__cause__ is lost
    bug = ValueError("bug")
    assert unavailable(bug) is bug


def test_pgbouncer_switch_sets_what_transaction_pooling_needs():
    plain = Settings(_env_file=None)
    _, args = connect_args(plain, "postgresql://u@h/db")
    assert args["statement_cache_size"] == 100 and "prepared_statement_name_func" not in args
    _, args = connect_args(plain.model_copy(update={"db_pooler": DbPooler.pgbouncer}), "postgresql://u@h/db")
    assert args["statement_cache_size"] == 0 and args["prepared_statement_name_func"]() == ""


def test_asyncpg_options_in_the_url_arrive_as_numbers():
    url, args = connect_args(Settings(_env_file=None), "postgresql://u:p@h:6432/db?statement_cache_size=0&command_timeout=30")
    assert args["statement_cache_size"] == 0 and args["command_timeout"] == 30.0
    assert url == "postgresql+asyncpg://u:p@h:6432/db"
