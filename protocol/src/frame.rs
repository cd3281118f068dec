//! Framing (docs/PROTOCOL.md, "Framing"): a little-endian `u16` length, a 4-byte header
//! (template, schema version, flags), then the template's fixed block.
//!
//! ```text
//! +----------+------------------------------+----------------------+
//! | u16 len  | header (4 bytes)             | block (fixed length) |
//! +----------+------------------------------+----------------------+
//!              u16 template  u8 version  u8 flags
//! ```
//!
//! [`FrameReader`] reassembles frames from a byte stream split at arbitrary points and
//! judges a frame's length from its length field alone, before the rest has arrived.

use crate::codes::LogoutReason;

/// Schema version of every message this codec writes and reads.
pub const VERSION: u8 = 1;
/// Largest frame, in bytes after the length field.
pub const MAX_FRAME: usize = 1024;
/// Message header: template (u16), version (u8), flags (u8).
pub const HEADER: usize = 4;
/// Header flag: sent again by a replay.
pub const FLAG_POSSIBLE_DUPLICATE: u8 = 1;
/// Header flag (market data): the last update of one command.
pub const FLAG_END_OF_EVENT: u8 = 2;

/// The byte stream itself is broken: the connection must close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A frame shorter than its header.
    #[error("frame of {0} bytes is shorter than the 4-byte header")]
    TooShort(usize),
    /// A frame over [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the 1024-byte limit")]
    TooLarge(usize),
}

impl FramingError {
    /// The reason of the `Logout` that answers it (the connection then closes).
    #[inline]
    pub const fn logout_reason(self) -> LogoutReason {
        match self {
            FramingError::TooShort(_) => LogoutReason::Malformed,
            FramingError::TooLarge(_) => LogoutReason::FrameTooLarge,
        }
    }
}

/// Reassembles frames from a byte stream split at arbitrary points.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
}

impl FrameReader {
    /// An empty reader.
    #[inline]
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Appends bytes read from the socket.
    #[inline]
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame (header and block, without the length), if one has arrived.
    ///
    /// # Errors
    /// [`FramingError`] when the stream is broken; the reader must not be used after.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FramingError> {
        let avail = &self.buf[self.start..];
        if avail.len() < 2 {
            return Ok(None);
        }
        let len = usize::from(u16::from_le_bytes([avail[0], avail[1]]));
        if len < HEADER {
            return Err(FramingError::TooShort(len));
        }
        if len > MAX_FRAME {
            return Err(FramingError::TooLarge(len));
        }
        if avail.len() < 2 + len {
            return Ok(None);
        }
        let at = self.start + 2;
        self.start += 2 + len;
        Ok(Some(&self.buf[at..at + len]))
    }

    /// Bytes buffered but not yet returned as frames.
    #[inline]
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// A frame's header, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// The template id.
    pub(crate) template: u16,
    /// The schema version.
    pub(crate) version: u8,
    /// The header flags.
    pub(crate) flags: u8,
}

impl Header {
    /// Splits a frame (without its length field) into its header and its block; `None` if
    /// it cannot hold a header.
    #[inline]
    pub(crate) fn split(frame: &[u8]) -> Option<(Header, &[u8])> {
        let (&[t0, t1, version, flags], block) = frame.split_first_chunk::<HEADER>()?;
        Some((Header { template: u16::from_le_bytes([t0, t1]), version, flags }, block))
    }
}

/// Starts a frame: appends a length to be filled in by [`end`] and the header; the block
/// follows. Returns where the frame starts.
#[inline(always)]
pub(crate) fn begin(out: &mut Vec<u8>, template: u16, flags: u8) -> usize {
    let at = out.len();
    let [t0, t1] = template.to_le_bytes();
    out.extend_from_slice(&[0, 0, t0, t1, VERSION, flags]);
    at
}

/// Ends the frame that starts at `at`: writes its length.
#[inline(always)]
pub(crate) fn end(out: &mut [u8], at: usize) {
    let len = out.len() - at - 2;
    #[allow(clippy::cast_possible_truncation, reason = "every block is far below 64 KiB")]
    out[at..at + 2].copy_from_slice(&(len as u16).to_le_bytes());
}
