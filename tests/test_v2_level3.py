"""The v2 L3 book: Kraken's worked example, add/modify/delete in queue order,
truncation, the aggregated L2 view, mismatches and malformed input."""

from __future__ import annotations

import zlib
from decimal import Decimal
from typing import Any

import pytest

from kraky_anyio.errors import BookError
from kraky_anyio.v2.book import Outcome, Verdict
from kraky_anyio.v2.level3 import Level3Book
from kraky_anyio.v2.messages import BookLevel, Level3Entry, Level3Order, decode

SYMBOL = "BTC/USD"
Order = tuple[str, str, str]  # order_id, limit_price, order_qty (wire text)
Event = tuple[str, str, str, str]  # event, order_id, limit_price, order_qty

# Kraken's L3 checksum guide (BTC/USD snapshot: 21 bid and 14 ask orders).
EX_BIDS: list[Order] = [
    ("OTCFZG-YOE2Q-LQKNM3", "44939.4", "0.88968699"),
    ("OFGP5R-B3E7G-54EZD6", "44939.4", "0.45210000"),
    ("OMPHVY-IZPJ4-KOKA3P", "44939.4", "0.10000000"),
    ("OAI5QZ-AMPLW-NBNO72", "44939.4", "0.14296323"),
    ("O7VFZI-CTFWH-FF6EIR", "44939.4", "0.25000000"),
    ("O472V3-ZG4EZ-OLD66C", "44939.4", "0.10292988"),
    ("OEK26P-BGPUK-LDHMD2", "44939.4", "0.33880000"),
    ("OSMYPE-S5VOC-YSS3WM", "44939.4", "1.28140860"),
    ("OJPMIN-NXZL5-SOWP6V", "44937.1", "0.03346877"),
    ("O6PUGE-SQWYQ-TRJEEE", "44934.7", "0.35630000"),
    ("OPUOGC-Q532V-3OKLPM", "44930.2", "0.22734299"),
    ("OCIU7J-VB3CI-HPULSF", "44930.2", "0.01000000"),
    ("ORWVAF-LJFLY-ZWEHDQ", "44930.2", "0.05550000"),
    ("OYRAHE-PI5AN-7KOQ4E", "44930.2", "0.70000000"),
    ("OGBHYU-UILDD-6DLLYJ", "44930.2", "0.15000000"),
    ("O74ZBU-K2TKC-R76XSW", "44928.0", "0.00105240"),
    ("OQVTQF-Y56MR-BM6LWL", "44919.6", "0.33870000"),
    ("OYEH6U-ZCHA2-3HFR3W", "44919.5", "0.07610000"),
    ("OLGPG7-HVKXU-J6SANK", "44912.0", "0.35630000"),
    ("OHGC3L-FRZQ3-UIVZRU", "44909.7", "0.06690000"),
    ("O73C6Y-VZXYA-H4LDFY", "44901.9", "0.00088982"),
]
EX_ASKS: list[Order] = [
    ("OFVLAA-HRSSP-BK75KB", "44939.5", "4.52308393"),
    ("OYBAMK-O5DKX-WMPUTM", "44939.5", "0.00111261"),
    ("O3DRCT-J5M2S-KYV526", "44939.5", "0.00100000"),
    ("OF3X3A-72WZY-6EKA5F", "44939.5", "0.01000000"),
    ("OF5UA6-6IIZ2-YGQTSJ", "44950.0", "0.10334926"),
    ("OSDOZX-7UZ6Y-QDNPVI", "44953.0", "0.00064537"),
    ("OV7KTS-A2TWV-3XKRIA", "44955.0", "0.00250000"),
    ("OOF2V5-RYOHC-GLRNPM", "44959.6", "0.35630000"),
    ("OTVOVS-QLST3-3JG7JI", "44959.6", "0.35630000"),
    ("OGZCIU-RDQ77-DAAL3P", "44960.1", "0.00338072"),
    ("OVLG3E-HYBQM-CWNGCY", "44960.2", "0.88967575"),
    ("OWEOFO-HUCJC-T37MVO", "44967.0", "3.14392283"),
    ("OVYTHY-D2N76-5QYREQ", "44978.5", "0.06778960"),
    ("OFO525-PHRVS-236RMN", "44979.2", "0.35630000"),
]
EX_CHECKSUM = 1063832831


def ref_checksum(asks: list[Order], bids: list[Order]) -> int:
    """Kraken's L3 checksum, independently: top 10 price levels, orders in queue order."""

    def side(orders: list[Order]) -> str:
        prices: list[str] = []
        out = ""
        for _, price, qty in orders:
            if price not in prices:
                prices.append(price)
            if len(prices) > 10:
                break
            out += price.replace(".", "").lstrip("0") + qty.replace(".", "").lstrip("0")
        return out

    return zlib.crc32((side(asks) + side(bids)).encode())


def orders_json(orders: list[Order] | list[Event], update: bool) -> str:
    items = []
    for item in orders:
        if update:
            event, oid, price, qty = item  # type: ignore[misc]
            extra = f',"event":"{event}"'
        else:
            oid, price, qty = item  # type: ignore[misc]
            extra = ""
        items.append(
            f'{{"order_id":"{oid}","limit_price":{price},"order_qty":{qty},'
            f'"timestamp":"2024-01-08T12:26:39.526146327Z"{extra}}}'
        )
    return "[" + ",".join(items) + "]"


def l3_frame(kind: str, asks: Any, bids: Any, checksum: int, symbol: str = SYMBOL) -> str:
    update = kind == "update"
    return (
        f'{{"channel":"level3","type":"{kind}","data":[{{"symbol":"{symbol}",'
        f'"checksum":{checksum},"bids":{orders_json(bids, update)},'
        f'"asks":{orders_json(asks, update)}}}]}}'
    )


def feed(book: Level3Book, text: str) -> Verdict:
    return book.feed(decode(text))


def example_book(depth: int = 10) -> Level3Book:
    book = Level3Book(SYMBOL, depth)
    assert feed(book, l3_frame("snapshot", EX_ASKS, EX_BIDS, EX_CHECKSUM)).outcome is (
        Outcome.SNAPSHOT
    )
    return book


def test_kraken_worked_example() -> None:
    assert ref_checksum(EX_ASKS, EX_BIDS) == EX_CHECKSUM
    book = example_book()
    assert book.valid and book.checksum == EX_CHECKSUM
    assert len(book.bids) == 10 and len(book.asks) == 10  # 10 price levels per side
    top = book.bids[0]
    assert top.price == Decimal("44939.4") and len(top.orders) == 8
    assert [o.order_id for o in top.orders][:2] == ["OTCFZG-YOE2Q-LQKNM3", "OFGP5R-B3E7G-54EZD6"]
    first = top.orders[0]
    assert first.order_qty == Decimal("0.88968699")
    assert first.timestamp == "2024-01-08T12:26:39.526146327Z"
    assert str(top.orders[1].order_qty) == "0.45210000"  # the wire text
    # The aggregated L2 view.
    l2 = book.l2_asks()
    assert l2[0] == BookLevel(
        price=Decimal("44939.5"),
        qty=Decimal("4.52308393")
        + Decimal("0.00111261")
        + Decimal("0.00100000")
        + Decimal("0.01000000"),
    )
    assert book.l2_bids()[1] == BookLevel(price=Decimal("44937.1"), qty=Decimal("0.03346877"))


def test_add_modify_delete_keep_queue_order() -> None:
    book = example_book(depth=100)
    asks = list(EX_ASKS)
    bids = list(EX_BIDS)
    # add appends to the back of its level
    new = ("ONEW01-AAAAA-BBBBBB", "44939.4", "0.50000000")
    bids.insert(8, new)
    # modify changes the quantity in place (the 2nd bid keeps its position)
    bids[1] = (bids[1][0], bids[1][1], "0.40000000")
    # delete removes; the last order at 44937.1 goes, so the level goes
    gone = bids.pop(9)
    assert gone[1] == "44937.1"
    events: list[Event] = [
        ("add", *new),
        ("modify", bids[1][0], "44939.4", "0.40000000"),
        ("delete", gone[0], gone[1], gone[2]),
    ]
    verdict = feed(book, l3_frame("update", [], events, ref_checksum(asks, bids)))
    assert verdict.outcome is Outcome.UPDATED
    top = book.bids[0]
    assert [o.order_id for o in top.orders][-1] == "ONEW01-AAAAA-BBBBBB"
    assert all(o.event is None for lv in book.bids for o in lv.orders)
    assert top.orders[1].order_qty == Decimal("0.40000000")
    assert book.bids[1].price == Decimal("44934.7")


def test_truncation_to_depth_and_checksum_of_top_ten_only() -> None:
    book = example_book(depth=10)
    # A new best ask pushes the 10th ask level (44979.2) out of depth 10.
    new = ("OASK01-AAAAA-BBBBBB", "44939.0", "1.00000000")
    asks = [new, *(o for o in EX_ASKS if o[1] != "44979.2")]
    verdict = feed(book, l3_frame("update", [("add", *new)], [], ref_checksum(asks, EX_BIDS)))
    assert verdict.ok and len(book.asks) == 10
    assert book.asks[-1].price == Decimal("44978.5")
    assert book.asks[0].orders[0].order_id == new[0]


def test_zero_quantity_and_unknown_orders() -> None:
    book = example_book(depth=100)
    bids = [o for o in EX_BIDS if o[0] != "OJPMIN-NXZL5-SOWP6V"]
    events: list[Event] = [
        ("modify", "OJPMIN-NXZL5-SOWP6V", "44937.1", "0"),  # no quantity: removed
        ("delete", "OUNKNO-WNNNN-NNNNNN", "44000.0", "1.0"),  # unknown: no change
        ("modify", "OUNKNO-WNNNN-MMMMMM", "44000.0", "1.0"),
    ]
    assert feed(book, l3_frame("update", [], events, ref_checksum(EX_ASKS, bids))).ok
    assert all(lv.price != Decimal("44937.1") for lv in book.bids)


def test_add_of_a_known_order_moves_it_to_the_back() -> None:
    book = example_book(depth=100)
    moved = EX_BIDS[0]
    bids = [*EX_BIDS[1:8], moved, *EX_BIDS[8:]]
    crc = ref_checksum(EX_ASKS, bids)
    assert feed(book, l3_frame("update", [], [("add", *moved)], crc)).ok
    assert book.bids[0].orders[-1].order_id == moved[0]


def test_mismatch_and_refused_updates() -> None:
    book = example_book()
    verdict = feed(book, l3_frame("update", [], [("delete", *EX_BIDS[0])], 1))
    assert verdict.outcome is Outcome.MISMATCH and verdict.expected == 1
    assert verdict.computed == book.checksum and not book.valid
    with pytest.raises(BookError, match="not valid"):
        feed(book, l3_frame("update", [], [], book.checksum))
    book.reset()
    assert book.asks == () and not book.valid


def test_other_symbols_and_channels_are_ignored() -> None:
    book = example_book()
    version = book.version
    assert feed(book, l3_frame("update", [], [], 0, symbol="ETH/USD")).outcome is Outcome.IGNORED
    assert book.feed(decode('{"channel":"heartbeat"}')).outcome is Outcome.IGNORED
    assert book.version == version


def order(**kw: Any) -> Level3Order:
    args: dict[str, Any] = {
        "order_id": "OX",
        "limit_price": Decimal("1.0"),
        "order_qty": Decimal("1.0"),
        "event": "add",
        **kw,
    }
    return Level3Order(**args)


@pytest.mark.parametrize(
    "bad",
    [
        order(event="replace"),
        order(event=None),
        order(order_id=""),
        order(limit_price=Decimal("0")),
        order(limit_price=Decimal("NaN")),
        order(order_qty=Decimal("-1")),
        order(order_qty=2.5),
    ],
)
def test_malformed_orders_raise_and_change_nothing(bad: Level3Order) -> None:
    book = example_book()
    before = (book.asks, book.bids, book.version)
    with pytest.raises(BookError):
        book.feed_entry("update", Level3Entry(symbol=SYMBOL, bids=[bad], checksum=0))
    assert (book.asks, book.bids, book.version) == before


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="depth"):
        Level3Book(SYMBOL, 25)
    with pytest.raises(ValueError, match="symbol"):
        Level3Book("")
    book = example_book()
    with pytest.raises(BookError, match="snapshot or update"):
        book.feed_entry("delta", Level3Entry(symbol=SYMBOL, checksum=0))


def test_precision_path() -> None:
    short_asks = [(o, p, str(Decimal(q).normalize())) for o, p, q in EX_ASKS]
    short_bids = [(o, p, str(Decimal(q).normalize())) for o, p, q in EX_BIDS]
    bare = Level3Book(SYMBOL)
    assert feed(bare, l3_frame("snapshot", short_asks, short_bids, EX_CHECKSUM)).outcome is (
        Outcome.MISMATCH
    )
    book = Level3Book(SYMBOL, price_precision=1, qty_precision=8)
    assert feed(book, l3_frame("snapshot", short_asks, short_bids, EX_CHECKSUM)).ok
    bare.set_precision(1, 8)
    assert bare.checksum == EX_CHECKSUM
