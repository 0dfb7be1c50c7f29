"""A small shop built on the pytest-celerybase reference bases.

* :mod:`shop.celery_app` - the Celery app and its settings (from the environment).
* :mod:`shop.db` - the schema (plain SQL, bound parameters only).
* :mod:`shop.tasks` - the tasks: sync users from the accounts API into the database,
  price an order line (cached in Redis), send receipts and review requests over pooled
  SMTP connections.
* :mod:`shop.orders` - placing an order, which sends the receipt and a delayed review
  request (the code that sends tasks rather than runs them).
"""
