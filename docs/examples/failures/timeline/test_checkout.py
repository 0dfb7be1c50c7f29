from pytest_celerybase import assert_hooks_called


def test_checkout(eager_app):
    @eager_app.task(name="shop.reserve_stock")
    def reserve_stock(sku):
        return True

    @eager_app.task(
        name="shop.charge_card", bind=True, max_retries=1, default_retry_delay=0
    )
    def charge_card(self, amount):
        raise self.retry(exc=ConnectionError("payment gateway timed out"))

    reserve_stock.delay("tee-42")
    charge_card.delay(30)
    assert_hooks_called(
        charge_card,
        ["before_start", "on_retry", "before_start", "on_success", "after_return"],
    )
