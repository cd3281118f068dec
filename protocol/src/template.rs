//! Template ids (docs/PROTOCOL.md): one coded enum per direction, so that decoding a
//! client's frame can only name a client message, and every match over them is exhaustive.
//!
//! A template's block length is not listed anywhere: it is measured from the message's
//! layout ([`crate::layout::Measure`] over its blank message), so the layout, the encoder,
//! the decoder and the length cannot disagree.

use crate::codes::wire_codes;
use crate::layout::Layout;
use crate::market_data::MdMsg;
use crate::order_entry::{ClientMsg, ServerMsg};

wire_codes! {
    /// Client → server (order-entry port).
    pub enum ClientTemplate: u16 {
        /// Authenticate a key and open a session.
        Logon = 1 => "Logon",
        /// Nothing sent for the agreed interval.
        Heartbeat = 2 => "Heartbeat",
        /// End the session.
        Logout = 3 => "Logout",
        /// Send the account's reports again from a sequence number.
        Replay = 4 => "Replay",
        /// A new order.
        NewOrder = 10 => "NewOrder",
        /// Change a live order's price or open quantity.
        Amend = 11 => "Amend",
        /// Cancel a live order.
        Cancel = 12 => "Cancel",
        /// Cancel the account's live orders (of an instrument, of a side).
        MassCancel = 13 => "MassCancel",
        /// Withdraw collateral from the account (paid on L1 once its batch is committed).
        Withdraw = 14 => "Withdraw",
    }
}

wire_codes! {
    /// Server → client (order-entry port): session messages, then execution reports.
    pub enum ServerTemplate: u16 {
        /// Logon accepted.
        LogonAck = 101 => "LogonAck",
        /// Logon refused.
        LogonReject = 102 => "LogonReject",
        /// Nothing sent for the agreed interval.
        Heartbeat = 103 => "Heartbeat",
        /// The session ends.
        Logout = 104 => "Logout",
        /// A replay is done.
        ReplayComplete = 105 => "ReplayComplete",
        /// Report: an order accepted.
        Accepted = 110 => "Accepted",
        /// Report: a request rejected.
        Rejected = 111 => "Rejected",
        /// Report: an order amended.
        Amended = 112 => "Amended",
        /// Report: (part of) an order cancelled.
        Cancelled = 113 => "Cancelled",
        /// Report: a fill.
        Fill = 114 => "Fill",
        /// Report: a withdrawal honoured.
        Withdrawn = 115 => "Withdrawn",
    }
}

wire_codes! {
    /// Market data: definitions and snapshots, then updates (210–214), then heartbeats.
    pub enum MdTemplate: u16 {
        /// An instrument.
        InstrumentDefinition = 201 => "InstrumentDefinition",
        /// A snapshot begins.
        SnapshotBegin = 202 => "SnapshotBegin",
        /// One resting order of a snapshot.
        SnapshotOrder = 203 => "SnapshotOrder",
        /// A snapshot ends.
        SnapshotEnd = 204 => "SnapshotEnd",
        /// An order rested.
        AddOrder = 210 => "AddOrder",
        /// An order shrank without trading.
        ReduceOrder = 211 => "ReduceOrder",
        /// An order left the book without trading.
        DeleteOrder = 212 => "DeleteOrder",
        /// A resting order traded.
        Execution = 213 => "Execution",
        /// A trade.
        Trade = 214 => "Trade",
        /// Nothing sent for a second.
        Heartbeat = 215 => "Heartbeat",
    }
}

impl ClientTemplate {
    /// Its block length, bytes: measured from its layout.
    #[inline]
    pub fn block_len(self) -> usize {
        ClientMsg::blank(self).block_len()
    }

    /// Whether its block starts with a client order id, or a withdrawal's request id (what a
    /// `bad_field` reject of it carries).
    #[inline]
    pub const fn has_cid(self) -> bool {
        match self {
            ClientTemplate::NewOrder | ClientTemplate::Amend | ClientTemplate::Cancel | ClientTemplate::Withdraw => {
                true
            }
            ClientTemplate::Logon
            | ClientTemplate::Heartbeat
            | ClientTemplate::Logout
            | ClientTemplate::Replay
            | ClientTemplate::MassCancel => false,
        }
    }
}

impl ServerTemplate {
    /// Its block length, bytes: measured from its layout.
    #[inline]
    pub fn block_len(self) -> usize {
        ServerMsg::blank(self).block_len()
    }

    /// Whether it is an execution report (the header flag *possible duplicate* is allowed).
    #[inline]
    pub const fn is_report(self) -> bool {
        match self {
            ServerTemplate::Accepted
            | ServerTemplate::Rejected
            | ServerTemplate::Amended
            | ServerTemplate::Cancelled
            | ServerTemplate::Fill
            | ServerTemplate::Withdrawn => true,
            ServerTemplate::LogonAck
            | ServerTemplate::LogonReject
            | ServerTemplate::Heartbeat
            | ServerTemplate::Logout
            | ServerTemplate::ReplayComplete => false,
        }
    }
}

impl MdTemplate {
    /// Its block length, bytes: measured from its layout.
    #[inline]
    pub fn block_len(self) -> usize {
        MdMsg::blank(self).block_len()
    }
}

/// The block length of any template id (`None`: no message has it).
pub fn block_len(template: u16) -> Option<usize> {
    ClientTemplate::from_code(template)
        .map(ClientTemplate::block_len)
        .or_else(|| ServerTemplate::from_code(template).map(ServerTemplate::block_len))
        .or_else(|| MdTemplate::from_code(template).map(MdTemplate::block_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids of the three directions never collide, and every length fits a frame.
    #[test]
    fn template_ids_are_distinct_and_blocks_fit_a_frame() {
        let ids: Vec<u16> = ClientTemplate::ALL
            .iter()
            .map(|t| t.code())
            .chain(ServerTemplate::ALL.iter().map(|t| t.code()))
            .chain(MdTemplate::ALL.iter().map(|t| t.code()))
            .collect();
        let distinct: std::collections::BTreeSet<u16> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in ids {
            assert!(block_len(id).is_some_and(|n| crate::frame::HEADER + n <= crate::frame::MAX_FRAME), "{id}");
        }
        assert_eq!(block_len(0), None);
    }
}
