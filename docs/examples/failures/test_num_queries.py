from sqlalchemy import text


def test_one_query(sqlite_engine, sql_queries):
    with sql_queries.assert_num_queries(1), sqlite_engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (name TEXT)"))
        conn.execute(text("INSERT INTO users VALUES (:name)"), {"name": "ada"})
