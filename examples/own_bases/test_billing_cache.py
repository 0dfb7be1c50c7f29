"""The class-level cache and the lazily loaded rates are fresh in every test."""

import pytest
from billing.bases import CachedTask, RatesTask
from billing.tasks import convert, invoice_total, record_invoice

RATES = "https://rates.example.com/latest"


@pytest.fixture
def rates(http_stub):
    http_stub.get(RATES, json={"USD": 1.1, "GBP": 0.85})
    return http_stub


@pytest.mark.filterwarnings("ignore::pytest_celerybase.CelerybaseWarning")
def test_a_total_is_cached_within_a_test(eager_app, billing_db):
    record_invoice.delay("ada", 1200)
    assert invoice_total.delay("ada").get() == 1200
    record_invoice.delay("ada", 300)
    assert invoice_total.delay("ada").get() == 1200  # the cache answers: the flaw

    assert len(CachedTask._cache) == 1


@pytest.mark.filterwarnings("ignore::pytest_celerybase.CelerybaseWarning")
def test_the_next_test_misses_the_cache(eager_app, billing_db):
    assert CachedTask._cache == {}
    record_invoice.delay("ada", 700)
    assert invoice_total.delay("ada").get() == 700


def test_rates_are_loaded_once_per_test(eager_app, rates):
    assert convert.delay(1000, "USD").get() == 1100
    assert convert.delay(1000, "GBP").get() == 850
    assert len(rates.calls) == 1
    assert RatesTask._rates == {"USD": 1.1, "GBP": 0.85}


def test_and_again_in_the_next(eager_app, rates):
    assert RatesTask._rates is None
    assert convert.delay(100, "USD").get() == 110
    assert len(rates.calls) == 1
