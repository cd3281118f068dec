//! Every template's bytes, pinned: one message of each, every field non-zero and every
//! flag set somewhere, encoded to the bytes the codec wrote before its layouts were
//! rewritten as walks (issue 15). A change to a layout that changes a byte fails here, and
//! the pinned bytes decode back to the same messages.

use l2x_protocol::codec::{
    self, ClientMsg, ClientTemplate, Liquidity, Logon, MdMsg, MdTemplate, Report, ReportHeader, ServerMsg,
    ServerTemplate, WireAmend, WireOrder,
};
use l2x_types::{
    Amount, ClientOrderId, InstrumentId, OrderId, OrderType, Price, Qty, Side, StpMode, TimeInForce, Timestamp,
};

#[allow(clippy::too_many_lines, reason = "one literal message per template")]
fn samples() -> (Vec<ClientMsg>, Vec<ServerMsg>, Vec<(MdMsg, bool)>) {
    let h = ReportHeader { seq: 0x0102, gateway_in_ns: 0x0304, engine_in_ns: 0x0506, engine_out_ns: 0x0708 };
    let client = vec![
        ClientMsg::Logon(Logon {
            key_id: 1,
            timestamp_ns: 2,
            nonce: 3,
            signature: [0xab; 32],
            heartbeat_ms: 4,
            cancel_on_disconnect: true,
            resume_from: 5,
        }),
        ClientMsg::Heartbeat,
        ClientMsg::Logout { reason: 1 },
        ClientMsg::Replay { from_seq: 77 },
        ClientMsg::NewOrder(WireOrder {
            cid: ClientOrderId(42),
            instrument: InstrumentId(3),
            side: Side::Sell,
            order_type: OrderType::Limit,
            tif: TimeInForce::Gtd,
            stp: StpMode::Decrement,
            post_only: true,
            reduce_only: true,
            price: Some(Price(-5)),
            qty: Qty(6),
            expire_ts: Some(Timestamp(7)),
        }),
        ClientMsg::Amend(WireAmend {
            cid: ClientOrderId(8),
            instrument: InstrumentId(9),
            price: None,
            qty: Some(Qty(10)),
        }),
        ClientMsg::Cancel { cid: ClientOrderId(11) },
        ClientMsg::MassCancel { instrument: Some(InstrumentId(12)), side: Some(Side::Sell) },
        ClientMsg::Withdraw { request_id: 13, amount: Amount(-14) },
    ];
    let server = vec![
        ServerMsg::LogonAck {
            session_id: 1,
            next_seq: 2,
            heartbeat_ms: 3,
            order_rate: 4,
            order_burst: 5,
            cancel_rate: 6,
            cancel_burst: 7,
        },
        ServerMsg::LogonReject { reason: 21 },
        ServerMsg::Heartbeat,
        ServerMsg::Logout { reason: 24 },
        ServerMsg::ReplayComplete { first: 8, last: 9 },
        ServerMsg::Report {
            header: h,
            report: Report::Accepted {
                cid: ClientOrderId(1),
                order_id: OrderId(2),
                instrument: InstrumentId(3),
                side: Side::Sell,
                price: Price(4),
                qty: Qty(5),
            },
            possible_duplicate: true,
        },
        ServerMsg::Report {
            header: h,
            report: Report::Rejected { cid: ClientOrderId(6), reason: 400, retry_after_ms: 7 },
            possible_duplicate: false,
        },
        ServerMsg::Report {
            header: h,
            report: Report::Amended {
                cid: ClientOrderId(8),
                order_id: OrderId(9),
                price: Price(10),
                qty: Qty(11),
                priority_kept: true,
            },
            possible_duplicate: false,
        },
        ServerMsg::Report {
            header: h,
            report: Report::Cancelled {
                cid: ClientOrderId(12),
                order_id: OrderId(13),
                qty: Qty(14),
                leaves: Qty(15),
                reason: 9,
            },
            possible_duplicate: false,
        },
        ServerMsg::Report {
            header: h,
            report: Report::Fill {
                cid: ClientOrderId(16),
                order_id: OrderId(17),
                match_id: 18,
                price: Price(19),
                qty: Qty(20),
                leaves: Qty(21),
                cum_qty: Qty(22),
                fee: -23,
                liquidity: Liquidity::Taker,
            },
            possible_duplicate: true,
        },
        ServerMsg::Report {
            header: h,
            report: Report::Withdrawn { request_id: 24, amount: Amount(25), collateral: Amount(-26) },
            possible_duplicate: true,
        },
    ];
    let mut sym = [0u8; 16];
    sym[..8].copy_from_slice(b"BTC-PERP");
    let md = vec![
        (
            MdMsg::InstrumentDefinition {
                md_seq: 1,
                instrument: InstrumentId(2),
                symbol: sym,
                tick: (5, 1),
                lot: (1, 3),
            },
            false,
        ),
        (MdMsg::SnapshotBegin { md_seq: 3, instrument: InstrumentId(4), count: 5 }, false),
        (
            MdMsg::Order {
                add: false,
                md_seq: 6,
                instrument: InstrumentId(7),
                side: Side::Sell,
                order_id: OrderId(8),
                price: Price(9),
                qty: Qty(10),
            },
            false,
        ),
        (MdMsg::SnapshotEnd { md_seq: 11, instrument: InstrumentId(12) }, false),
        (
            MdMsg::Order {
                add: true,
                md_seq: 13,
                instrument: InstrumentId(14),
                side: Side::Buy,
                order_id: OrderId(15),
                price: Price(16),
                qty: Qty(17),
            },
            true,
        ),
        (
            MdMsg::ReduceOrder {
                md_seq: 18,
                instrument: InstrumentId(19),
                side: Side::Sell,
                order_id: OrderId(20),
                removed: Qty(21),
                leaves: Qty(22),
            },
            false,
        ),
        (MdMsg::DeleteOrder { md_seq: 23, instrument: InstrumentId(24), side: Side::Buy, order_id: OrderId(25) }, true),
        (
            MdMsg::Execution {
                md_seq: 26,
                instrument: InstrumentId(27),
                side: Side::Sell,
                order_id: OrderId(28),
                price: Price(29),
                qty: Qty(30),
                leaves: Qty(31),
            },
            false,
        ),
        (
            MdMsg::Trade {
                md_seq: 32,
                instrument: InstrumentId(33),
                aggressor: Side::Buy,
                match_id: 34,
                price: Price(35),
                qty: Qty(36),
            },
            true,
        ),
        (MdMsg::Heartbeat { md_seq: 37 }, false),
    ];
    (client, server, md)
}

const CLIENT: [&str; 9] = [
    "4c0001000100010000000000000002000000000000000300000000000000abababababababababababababababababababababababababababababababab04000000010000000500000000000000",
    "040002000100",
    "0c00030001000100000000000000",
    "0c00040001004d00000000000000",
    "34000a0001002a0000000000000003000000010003030f00000000000000fbffffffffffffff06000000000000000700000000000000",
    "24000b0001000800000000000000090000000200000000000000000000000a00000000000000",
    "0c000c0001000b00000000000000",
    "0c000d0001000c00000003010000",
    "14000e0001000d00000000000000f2ffffffffffffff",
];

const SERVER: [&str; 11] = [
    "2c006500010001000000000000000200000000000000030000000400000005000000060000000700000000000000",
    "0c00660001001500000000000000",
    "040067000100",
    "0c00680001001800000000000000",
    "14006900010008000000000000000900000000000000",
    "54006e0001010201000000000000040300000000000006050000000000000807000000000000010000000000000002000000000000000300000001000000040000000000000005000000000000000000000000000000",
    "34006f000100020100000000000004030000000000000605000000000000080700000000000006000000000000009001000007000000",
    "4c00700001000201000000000000040300000000000006050000000000000807000000000000080000000000000009000000000000000a000000000000000b000000000000000100000000000000",
    "4c007100010002010000000000000403000000000000060500000000000008070000000000000c000000000000000d000000000000000e000000000000000f000000000000000900000000000000",
    "6c007200010102010000000000000403000000000000060500000000000008070000000000001000000000000000110000000000000012000000000000001300000000000000140000000000000015000000000000001600000000000000e9ffffffffffffff0100000000000000",
    "440073000101020100000000000004030000000000000605000000000000080700000000000018000000000000001900000000000000e6ffffffffffffff0000000000000000",
];

const MARKET_DATA: [&str; 10] = [
    "3400c90001000100000000000000020000004254432d5045525000000000000000000500000000000000010000000000000001030000",
    "1c00ca000100030000000000000004000000000000000500000000000000",
    "2c00cb00010006000000000000000700000001000000080000000000000009000000000000000a00000000000000",
    "1400cc0001000b000000000000000c00000000000000",
    "2c00d20001020d000000000000000e000000000000000f0000000000000010000000000000001100000000000000",
    "2c00d300010012000000000000001300000001000000140000000000000015000000000000001600000000000000",
    "1c00d4000102170000000000000018000000000000001900000000000000",
    "3400d50001001a000000000000001b000000010000001c000000000000001d000000000000001e000000000000001f00000000000000",
    "2c00d600010220000000000000002100000000000000220000000000000023000000000000002400000000000000",
    "0c00d70001002500000000000000",
];

fn bytes(encode: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    encode(&mut out);
    hex::encode(out)
}

#[test]
fn every_template_keeps_its_bytes() {
    let (client, server, md) = samples();
    // One sample and one pinned frame per template, in code order: a template added without
    // both fails, and so does a sample list that repeats one template and misses another.
    assert_eq!((client.len(), server.len(), md.len()), (CLIENT.len(), SERVER.len(), MARKET_DATA.len()));
    let codes = |pinned: &[&str]| -> Vec<u16> {
        pinned.iter().map(|f| u16::from_le_bytes(hex::decode(f).unwrap()[2..4].try_into().unwrap())).collect()
    };
    assert_eq!(codes(&CLIENT), ClientTemplate::ALL.iter().map(|t| t.code()).collect::<Vec<_>>());
    assert_eq!(codes(&SERVER), ServerTemplate::ALL.iter().map(|t| t.code()).collect::<Vec<_>>());
    assert_eq!(codes(&MARKET_DATA), MdTemplate::ALL.iter().map(|t| t.code()).collect::<Vec<_>>());
    for (msg, pinned) in client.iter().zip(CLIENT) {
        assert_eq!(bytes(|out| codec::encode_client(msg, out)), pinned, "{msg:?}");
        assert_eq!(codec::decode_client(&hex::decode(pinned).unwrap()[2..]).as_ref(), Ok(msg));
    }
    for (msg, pinned) in server.iter().zip(SERVER) {
        assert_eq!(bytes(|out| codec::encode_server(msg, out)), pinned, "{msg:?}");
        assert_eq!(codec::decode_server(&hex::decode(pinned).unwrap()[2..]).as_ref(), Ok(msg));
    }
    for ((msg, end), pinned) in md.iter().zip(MARKET_DATA) {
        assert_eq!(bytes(|out| codec::encode_md(msg, *end, out)), pinned, "{msg:?}");
        assert_eq!(codec::decode_md(&hex::decode(pinned).unwrap()[2..]), Ok((*msg, *end)));
    }
}
