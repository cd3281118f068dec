//! `l2x journal export`: a journal's commands as scenario lines, the inverse of `l2x match
//! --journal`.

use std::io::{self, Write};

use l2x_engine::StateMachine;
use l2x_types::{Amount, Command, Qty, Sequenced, SpecField};

use super::output::{holder_json, usdc};

/// The scenario line of a sequenced command, formatted against the state just before it was
/// applied (which knows the instruments' symbols and units). Parsing the line and converting
/// it against the same state gives back exactly `cmd` — except for a command naming an
/// instrument id that was never listed (possible only from the binary gateway, which carries
/// ids): it has no scenario form and is written with the symbol `#<id>`, which the scenario
/// format refuses.
pub fn format_command(state: &StateMachine, cmd: &Sequenced) -> String {
    use core::fmt::Write as _;
    let symbol = |id: l2x_types::InstrumentId| {
        state.instrument(id).map_or_else(|| format!("#{}", id.0), |i| i.symbol.to_string())
    };
    let price = |id, p: l2x_types::Price| state.instrument(id).map_or_else(|| p.0.to_string(), |i| i.format_price(p));
    let qty = |id, q: Qty| state.instrument(id).map_or_else(|| q.0.to_string(), |i| i.format_qty(q));
    let mut s = String::with_capacity(160);
    // Writing to a String cannot fail.
    let _ = match &cmd.cmd {
        Command::ListInstrument(spec) => {
            let _ = write!(s, r#"{{"cmd":"instrument","symbol":"{}""#, spec.symbol);
            for (name, value) in SpecField::ALL.iter().zip(spec.decimals()) {
                let _ = write!(s, r#","{name}":"{value}""#);
            }
            Ok(())
        }
        flow @ (Command::Deposit { .. } | Command::Withdraw { .. } | Command::WithdrawRequest { .. }) => {
            format_flow(flow, &mut s)
        }
        Command::Oracle { instrument, price: p } => {
            write!(s, r#"{{"cmd":"oracle","symbol":"{}","price":"{}""#, symbol(*instrument), price(*instrument, *p))
        }
        Command::Funding { instrument } => write!(s, r#"{{"cmd":"funding","symbol":"{}""#, symbol(*instrument)),
        Command::Tick => write!(s, r#"{{"cmd":"tick""#),
        l1 @ (Command::L1Deposit { .. } | Command::ForcedWithdrawal { .. } | Command::L1Bind { .. }) => {
            format_l1(l1, &mut s)
        }
        Command::NewOrder(o) => {
            let _ = write!(
                s,
                r#"{{"cmd":"new","account":{},"cid":{},"symbol":"{}","side":"{}","type":"{}""#,
                o.account,
                o.cid,
                symbol(o.instrument),
                o.side,
                o.order_type
            );
            if let Some(p) = o.price {
                let _ = write!(s, r#","price":"{}""#, price(o.instrument, p));
            }
            let _ = write!(s, r#","qty":"{}","tif":"{}""#, qty(o.instrument, o.qty), o.tif);
            if let Some(t) = o.expire_ts {
                let _ = write!(s, r#","expire_ts":{t}"#);
            }
            write!(s, r#","post_only":{},"reduce_only":{},"stp":"{}""#, o.post_only, o.reduce_only, o.stp)
        }
        Command::Amend(a) => {
            let _ = write!(s, r#"{{"cmd":"amend","account":{},"cid":{}"#, a.account, a.cid);
            if let Some(p) = a.price {
                let _ = write!(s, r#","price":"{}""#, price(a.instrument, p));
            }
            if let Some(q) = a.qty {
                let _ = write!(s, r#","qty":"{}""#, qty(a.instrument, q));
            }
            Ok(())
        }
        Command::Cancel(c) => {
            let _ = write!(s, r#"{{"cmd":"cancel","account":{},"cid":{}"#, c.account, c.cid);
            if c.on_disconnect {
                let _ = write!(s, r#","on_disconnect":true"#);
            }
            Ok(())
        }
        Command::MassCancel(m) => {
            let _ = write!(s, r#"{{"cmd":"mass_cancel","account":{}"#, m.account);
            if let Some(i) = m.instrument {
                let _ = write!(s, r#","symbol":"{}""#, symbol(i));
            }
            if let Some(side) = m.side {
                let _ = write!(s, r#","side":"{side}""#);
            }
            Ok(())
        }
    };
    let _ = write!(s, r#","ts":{}}}"#, cmd.ts.0);
    s
}

/// The scenario line of a deposit or a withdrawal (the operator's or an account's own),
/// without its `ts` and closing brace.
fn format_flow(cmd: &Command, s: &mut String) -> core::fmt::Result {
    use core::fmt::Write as _;
    let amount = |a: Amount| usdc(i128::from(a.0));
    match *cmd {
        Command::Deposit { to, amount: a } => {
            write!(s, r#"{{"cmd":"deposit","account":{},"amount":"{}""#, holder_json(to), amount(a))
        }
        Command::Withdraw { account, amount: a } => {
            write!(s, r#"{{"cmd":"withdraw","account":{account},"amount":"{}""#, amount(a))
        }
        Command::WithdrawRequest { account, amount: a, request_id } => {
            write!(s, r#"{{"cmd":"withdraw","account":{account},"amount":"{}","request_id":{request_id}"#, amount(a))
        }
        _ => Ok(()),
    }
}

/// The scenario line of an L1 command, without its `ts` and closing brace.
fn format_l1(cmd: &Command, s: &mut String) -> core::fmt::Result {
    use core::fmt::Write as _;
    match *cmd {
        Command::L1Deposit { index, to, amount, from, requested_at } => write!(
            s,
            r#"{{"cmd":"l1_deposit","index":{index},"account":{},"amount":"{}","from":"{from}","requested_at":{requested_at}"#,
            holder_json(to),
            usdc(i128::from(amount.0))
        ),
        Command::ForcedWithdrawal { index, account, amount, from, requested_at } => write!(
            s,
            r#"{{"cmd":"forced_withdrawal","index":{index},"account":{account},"amount":"{}","from":"{from}","requested_at":{requested_at}"#,
            usdc(i128::from(amount.0))
        ),
        Command::L1Bind { chain_id, contract, token } => {
            write!(s, r#"{{"cmd":"l1_bind","chain_id":{chain_id},"contract":"{contract}","token":"{token}""#)
        }
        _ => Ok(()),
    }
}

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Commands written.
    pub commands: u64,
    /// The last sequence number read.
    pub last_seq: u64,
    /// Whether the journal ended with a torn record (not exported).
    pub torn: bool,
}

/// Writes every command of the journal in `dir` as a scenario line, in order: the inverse
/// of `l2x match --journal` (running the export and exporting again gives the same lines).
/// The journal is replayed as it is read, so each command is formatted against the state
/// before it.
///
/// # Errors
/// Journal errors (corruption, I/O) and I/O errors writing `out`.
pub fn export(dir: &std::path::Path, out: &mut impl Write) -> Result<Exported, crate::journal::JournalError> {
    let mut state = StateMachine::new();
    let mut events = Vec::new();
    let mut written = Exported::default();
    let mut failure: Option<io::Error> = None;
    let report = crate::journal::scan(dir, |cmd| {
        let mut line = format_command(&state, &cmd);
        line.push('\n');
        if let Err(e) = out.write_all(line.as_bytes()) {
            failure = Some(e);
            return core::ops::ControlFlow::Break(());
        }
        events.clear();
        state.apply(&cmd, &mut events);
        written.commands += 1;
        core::ops::ControlFlow::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(crate::journal::JournalError::Io { path: "<output>".into(), source: e });
    }
    written.last_seq = report.last_seq;
    written.torn = report.torn.is_some();
    Ok(written)
}

/// Why `l2x journal export` could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the journal, or writing a line ([`export`]).
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// Flushing the lines, or writing the note on a torn tail.
    #[error(transparent)]
    Output(#[from] io::Error),
}

/// `l2x journal export DIR`: [`export`] to `out`, flushed; a journal ending with a torn
/// record is said on `err` (`l2x: DIR: the journal ends with a torn record after seq N (not
/// exported)`).
///
/// # Errors
/// [`ExportError`]: the journal's, or I/O writing.
pub fn export_journal(
    dir: &std::path::Path,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<Exported, ExportError> {
    let exported = export(dir, out)?;
    out.flush()?;
    if exported.torn {
        writeln!(
            err,
            "l2x: {}: the journal ends with a torn record after seq {} (not exported)",
            dir.display(),
            exported.last_seq
        )?;
    }
    Ok(exported)
}
