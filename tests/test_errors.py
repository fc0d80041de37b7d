"""How an error reads: the source is named once, the location first, the hint on its own line."""

from segmerge.errors import BadAnswer, DataError


def test_a_connector_error_names_its_source_once():
    # connectors write "shop: GET /x ..." and pass field="shop": printed "shop: shop: GET" before
    assert str(BadAnswer("shop: GET /orders answered 500", field="shop")) == (
        "shop: GET /orders answered 500"
    )
    assert str(BadAnswer("GET /orders answered 500", field="shop")).startswith("shop: GET /orders")


def test_a_location_and_a_hint_frame_the_message():
    err = DataError(
        "bad amount", file="orders.csv", line=12, column=3, field="amount", hint="fix it"
    )
    assert str(err) == "orders.csv:12:3: amount: bad amount\n  hint: fix it"
