from billing.payments import charge, refund


def test_charge(eager_app, mocker):
    mocker.patch("billing.gateway.capture", return_value={"id": "ch_1"})
    assert charge.delay(7, 20).get() == {"id": "ch_1"}


def test_charge_refuses_a_negative_amount(eager_app):
    assert charge.delay(7, -5).failed()


def test_refund(eager_app):
    assert refund.delay(7, 20).get() == {"order": 7, "refunded": 20}
