"""Which ingestion failures are retried: faults of the stores (database, storage, network) are
transient; a bug or a bad value is not, and is not retried forever."""

import psycopg
import pytest
from azure.core.exceptions import ServiceRequestError

from kalimera.conversations import attempts
from kalimera.db import DatabaseUnavailable


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (DatabaseUnavailable("PoolTimeout"), True),
        (psycopg.OperationalError("server closed the connection"), True),
        (psycopg.errors.QueryCanceled("statement timeout"), True),
        (ServiceRequestError("connection refused"), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (AttributeError("'OggOpusInfo' object has no attribute 'sample_rate'"), False),
        (psycopg.errors.NumericValueOutOfRange("numeric field overflow"), False),
        (ZeroDivisionError(), False),
    ],
)
def test_only_store_faults_are_transient(exc: BaseException, transient: bool) -> None:
    assert attempts.is_transient(exc) is transient
