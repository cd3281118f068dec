//! The progress bar of long replays: commands per second and the time left, on standard
//! error, only when it is a terminal (indicatif hides it otherwise).
//!
//! The total is known exactly for `--until-seq` and `--until-time`; to the journal's end it
//! is estimated from the segments' headers (each holds its first sequence number): the
//! segments before the last are full, the last is taken as half full — the bar says `≈`.

use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use l2x_sequencer::journal::{self, JournalError};

/// Updating the bar costs an atomic load per command; drawing happens at most ~15 times a
/// second (indicatif's rate limit).
const EVERY: u64 = 1 << 14;

/// How many commands a replay to `limit` will read: (total, exact?).
///
/// # Errors
/// The journal's, reading the segments' headers.
pub fn estimate(dir: &Path, limit: u64) -> Result<(u64, bool), JournalError> {
    if limit != u64::MAX {
        return Ok((limit, true));
    }
    let firsts = journal::first_seqs(dir)?;
    let Some(&last_first) = firsts.last() else { return Ok((0, true)) };
    let per_segment = match firsts.len() {
        0 | 1 => 0,
        n => last_first.saturating_sub(firsts[0]) / (n as u64 - 1),
    };
    Ok((last_first.saturating_sub(1) + per_segment / 2, false))
}

/// A bar, or nothing (`--no-progress`, or not asked for).
#[derive(Debug)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar over `total` commands (exact or estimated), starting at `from`.
    pub fn new(show: bool, (total, exact): (u64, bool), from: u64) -> Bar {
        if !show || total == 0 {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let about = if exact { "" } else { "≈" };
        let template = format!("{{bar:40}} {{pos}}/{about}{{len}} commands  {{per_sec}}  ETA {{eta}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.set_position(from);
        Bar(Some(bar))
    }

    /// After the command `seq`.
    pub fn tick(&self, seq: u64) {
        if seq.is_multiple_of(EVERY)
            && let Some(bar) = &self.0
        {
            if seq > bar.length().unwrap_or(0) {
                bar.set_length(seq.saturating_add(seq / 10));
            }
            bar.set_position(seq);
        }
    }

    /// At the end (the bar is cleared from the terminal).
    pub fn finish(&self, seq: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(seq);
            bar.finish_and_clear();
        }
    }
}
