"""The billing tests' only fixture: the schema, on the database the plugin redirects to.

``examples/pytest.ini`` says ``celerybase_database_urls = postgresql://*@billing-db*/*``:
during a test, ``create_engine(DATABASE_URL)`` (here and in ``DatabaseTask.db``) returns
an engine on the test's SQLite database.
"""

import pytest
from billing.bases import DATABASE_URL
from billing.tasks import SCHEMA
from sqlalchemy import Engine, create_engine, text


@pytest.fixture
def billing_db() -> Engine:
    """The test's database, with the billing schema (empty in every test)."""
    engine = create_engine(DATABASE_URL)
    with engine.begin() as conn:
        conn.execute(text(SCHEMA))
    return engine
