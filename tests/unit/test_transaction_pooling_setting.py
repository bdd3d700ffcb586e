"""Whether the app is behind a transaction pooler: said by KALIMERA_DB_TRANSACTION_POOLING, or
else by the port (6432: Azure's built-in PgBouncer, which pools by transaction)."""

import pytest

from kalimera.db import transaction_pooling


@pytest.mark.parametrize(
    ("conninfo", "expected"),
    [
        ("postgresql://app@psql-x.postgres.azure.com:6432/kalimera?sslmode=require", True),
        ("postgresql://app@psql-x.postgres.azure.com:5432/kalimera?sslmode=require", False),
        ("postgresql://postgres@127.0.0.1/kalimera", False),
        ("host=127.0.0.1 port=6432 dbname=kalimera", True),
        ("host=127.0.0.1 port=41234 dbname=kalimera", False),
    ],
)
def test_unset_it_follows_the_port(conninfo: str, expected: bool) -> None:
    assert transaction_pooling(conninfo, None) is expected


@pytest.mark.parametrize("setting", [True, False])
def test_the_setting_wins_over_the_port(setting: bool) -> None:
    assert transaction_pooling("host=h port=6432", setting) is setting
    assert transaction_pooling("host=h port=5432", setting) is setting
