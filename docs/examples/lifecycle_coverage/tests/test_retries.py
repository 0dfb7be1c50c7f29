from billing.gateway import GatewayTimeout
from billing.payments import charge
from pytest_celerybase import assert_hooks_called


def test_charge_retries_when_the_gateway_times_out(eager_app, mocker):
    mocker.patch(
        "billing.gateway.capture", side_effect=[GatewayTimeout(), {"id": "ch_2"}]
    )
    assert charge.delay(8, 10).get() == {"id": "ch_2"}
    assert_hooks_called(
        charge,
        ["before_start", "on_retry", "before_start", "on_success", "after_return"],
    )
