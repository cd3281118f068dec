//! docs/PROTOCOL.md against the code: a client is written from the document alone, so every
//! code, enum value, block length and example it gives must be the code's. A reason code
//! added to the code and not to the document (or numbered differently) fails here.

use std::collections::BTreeMap;

use l2x_protocol::codec::{
    self, ClientMsg, ClientTemplate, Liquidity, Logon, MdTemplate, Report, ReportHeader, ServerMsg, ServerTemplate,
    WireOrder,
};
use l2x_protocol::codes::{LogoutReason, Refusal, SessionReject};
use l2x_protocol::logon::sign;
use l2x_types::{
    Amount, CancelReason, ClientOrderId, InstrumentId, OrderType, Price, Qty, RejectReason, Side, StpMode, TimeInForce,
};

const PROTOCOL: &str = include_str!("../../../docs/PROTOCOL.md");

/// The cells of every table row in the section under `heading` (up to the next heading of
/// the same or a higher level), header and separator rows left out.
fn rows(heading: &str) -> Vec<Vec<String>> {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut lines = PROTOCOL.lines().skip_while(|l| l.trim() != heading);
    assert!(lines.next().is_some(), "no {heading:?} in docs/PROTOCOL.md");
    let mut out = Vec::new();
    let mut in_table = false;
    for line in lines {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes > 0 && hashes <= level && line.chars().nth(hashes) == Some(' ') {
            break;
        }
        let Some(inner) = line.trim().strip_prefix('|').and_then(|l| l.strip_suffix('|')) else {
            in_table = false;
            continue;
        };
        // A table's first row is its header; its second the separator.
        let header = !in_table;
        in_table = true;
        let cells: Vec<String> = inner.split('|').map(|c| c.trim().to_string()).collect();
        let separator = cells.iter().all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')));
        if !header && !separator {
            out.push(cells);
        }
    }
    out
}

/// A code table (`| code | name | … |`) as code → name; a code listed twice fails.
fn codes(heading: &str) -> BTreeMap<u64, String> {
    let mut map = BTreeMap::new();
    for row in rows(heading) {
        let code: u64 = row[0].parse().unwrap_or_else(|_| panic!("{heading}: {row:?}"));
        assert!(map.insert(code, row[1].clone()).is_none(), "{heading}: code {code} listed twice");
    }
    map
}

fn expected<T: Copy>(all: &[T], code: impl Fn(T) -> u64, name: impl Fn(T) -> &'static str) -> BTreeMap<u64, String> {
    all.iter().map(|&v| (code(v), name(v).to_string())).collect()
}

#[test]
fn every_reason_code_is_in_protocol_md_with_its_number() {
    let mut rejects = expected(RejectReason::ALL, |r| u64::from(r.code()), RejectReason::as_str);
    rejects.extend(expected(SessionReject::ALL, |r| u64::from(r.code()), SessionReject::as_str));
    assert_eq!(codes("### Reject reasons"), rejects, "Rejected.reason");
    assert_eq!(
        codes("### Cancel reasons"),
        expected(CancelReason::ALL, |r| u64::from(r.code()), CancelReason::as_str),
        "Cancelled.reason"
    );
    assert_eq!(
        codes("### Logon reject reasons"),
        expected(Refusal::ALL, |r| u64::from(r.code()), Refusal::as_str),
        "LogonReject.reason"
    );
    assert_eq!(
        codes("### Logout reasons"),
        expected(LogoutReason::ALL, |r| u64::from(r.code()), LogoutReason::as_str),
        "Logout.reason"
    );
}

#[test]
fn enum_codes_are_the_codecs() {
    let table: BTreeMap<String, String> =
        rows("## Conventions").into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let list = |all: Vec<(u8, &str)>| all.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", ");
    let of = |name: &str| table.get(name).cloned().unwrap_or_else(|| panic!("no {name} in {table:?}"));
    assert_eq!(of("side"), list(Side::ALL.iter().map(|v| (v.code(), v.as_str())).collect()));
    assert_eq!(of("order type"), list(OrderType::ALL.iter().map(|v| (v.code(), v.as_str())).collect()));
    assert_eq!(of("time in force"), list(TimeInForce::ALL.iter().map(|v| (v.code(), v.as_str())).collect()));
    assert_eq!(of("self-trade prevention"), list(StpMode::ALL.iter().map(|v| (v.code(), v.as_str())).collect()));
    assert_eq!(of("liquidity"), list(vec![(Liquidity::Maker as u8, "maker"), (Liquidity::Taker as u8, "taker")]));
}

#[test]
fn every_template_is_documented_with_its_block_length() {
    let mut documented = BTreeMap::new();
    for heading in ["## Order entry", "## Market data"] {
        for row in rows(heading) {
            let (Ok(template), Some(Ok(block))) = (row[0].parse::<u16>(), row.get(2).map(|b| b.parse::<usize>()))
            else {
                continue;
            };
            assert!(documented.insert(template, (row[1].clone(), block)).is_none(), "template {template} twice");
        }
    }
    for (&template, (name, block)) in &documented {
        assert_eq!(codec::block_len(template), Some(*block), "{name} ({template})");
    }
    let known: Vec<u16> = (0..=u16::MAX).filter(|&t| codec::block_len(t).is_some()).collect();
    assert_eq!(documented.keys().copied().collect::<Vec<_>>(), known, "every template the codec knows");
    let names: BTreeMap<u16, &str> = (ClientTemplate::ALL.iter().map(|t| (t.code(), t.as_str())))
        .chain(ServerTemplate::ALL.iter().map(|t| (t.code(), t.as_str())))
        .chain(MdTemplate::ALL.iter().map(|t| (t.code(), t.as_str())))
        .collect();
    for (&template, (name, _)) in &documented {
        assert_eq!(names.get(&template), Some(&name.as_str()), "the name of template {template}");
    }
}

/// `bytes` as the document prints a frame: hex, 32 bytes a line.
fn hex_lines(bytes: &[u8]) -> Vec<String> {
    bytes.chunks(32).map(hex::encode).collect()
}

fn assert_lines_in_doc(lines: &[String], what: &str) {
    let doc: Vec<&str> = PROTOCOL.lines().map(str::trim).collect();
    let at = doc.iter().position(|l| *l == lines[0]).unwrap_or_else(|| panic!("{what}: no line {:?}", lines[0]));
    assert_eq!(&doc[at..at + lines.len()], lines, "{what}");
}

#[test]
fn the_signature_and_frame_examples_are_what_the_code_computes() {
    let (key_id, timestamp_ns, nonce): (u64, u64, u64) = (1, 1_700_000_000_000_000_000, 7);
    let secret = [1u8; 32];
    let signed = format!(
        "signed bytes = {} {} {} {}",
        hex::encode(b"l2x-logon-v1"),
        hex::encode(key_id.to_le_bytes()),
        hex::encode(timestamp_ns.to_le_bytes()),
        hex::encode(nonce.to_le_bytes())
    );
    assert!(PROTOCOL.lines().any(|l| l == signed), "{signed}");
    let signature = sign(&secret, key_id, timestamp_ns, nonce);
    let line = format!("signature    = {}", hex::encode(signature));
    assert!(PROTOCOL.lines().any(|l| l == line), "{line}");
    let mut frame = Vec::new();
    let logon = Logon {
        key_id,
        timestamp_ns,
        nonce,
        signature,
        heartbeat_ms: 1000,
        cancel_on_disconnect: true,
        resume_from: 0,
    };
    codec::encode_client(&ClientMsg::Logon(logon), &mut frame);
    assert_eq!(frame.len(), 78);
    assert_lines_in_doc(&hex_lines(&frame), "the Logon frame");
    let mut frame = Vec::new();
    let order = WireOrder::limit(ClientOrderId(42), InstrumentId(0), Side::Buy, Price(100_010), Qty(2_000));
    codec::encode_client(&ClientMsg::NewOrder(order), &mut frame);
    assert_eq!(frame.len(), 54);
    assert_lines_in_doc(&hex_lines(&frame), "the NewOrder frame");
}

#[test]
fn the_withdrawal_examples_are_what_the_code_computes() {
    let mut frame = Vec::new();
    codec::encode_client(&ClientMsg::Withdraw { request_id: 9, amount: Amount(250_000_000) }, &mut frame);
    assert_eq!(frame.len(), 22);
    assert_lines_in_doc(&hex_lines(&frame), "the Withdraw frame");
    let header = ReportHeader {
        seq: 3,
        gateway_in_ns: 1_700_000_000_000_000_000,
        engine_in_ns: 1_700_000_000_000_004_000,
        engine_out_ns: 1_700_000_000_000_009_000,
    };
    let report = Report::Withdrawn { request_id: 9, amount: Amount(250_000_000), collateral: Amount(750_000_000) };
    let mut frame = Vec::new();
    codec::encode_server(&ServerMsg::Report { header, report, possible_duplicate: false }, &mut frame);
    assert_eq!(frame.len(), 70);
    assert_lines_in_doc(&hex_lines(&frame), "the Withdrawn frame");
}
