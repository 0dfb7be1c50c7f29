from billing import gateway
from billing.bases import AuditedTask
from billing.celery import app


@app.task(
    base=AuditedTask,
    autoretry_for=(gateway.GatewayTimeout,),
    max_retries=3,
    default_retry_delay=5,
)
def charge(order_id, amount):
    if amount <= 0:
        raise ValueError(f"cannot charge {amount}")
    return gateway.capture(order_id, amount)


@app.task(base=AuditedTask)
def refund(order_id, amount):
    return {"order": order_id, "refunded": amount}
