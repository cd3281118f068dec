//! Pinning a thread to a core: the one place l2x does it (the pipeline's threads, the
//! gateway's event loop, the benchmarks' load threads).

/// Core ids at or past this cannot be pinned to (the size of Linux's `cpu_set_t`:
/// core_affinity indexes a fixed-size set and panics past it).
const MAX_CORE_ID: usize = 1024;

/// A core the calling thread could not be pinned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot pin a thread to core {core}: {why}")]
pub struct PinError {
    /// The core asked for.
    pub core: usize,
    /// Why not.
    pub why: &'static str,
}

/// Pins the calling thread to `core` (a core id as `nproc` counts them, from 0).
///
/// # Errors
/// [`PinError`] when the machine has no such core or the operating system refuses.
pub fn pin_current_thread(core: usize) -> Result<(), PinError> {
    if core >= MAX_CORE_ID {
        return Err(PinError { core, why: "core ids stop at 1023" });
    }
    let known = core_affinity::get_core_ids().unwrap_or_default();
    if !known.iter().any(|c| c.id == core) {
        return Err(PinError { core, why: "no such core on this machine" });
    }
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(PinError { core, why: "the operating system refused" })
    }
}

/// Pins the calling thread to `core` if one is given.
///
/// # Errors
/// As [`pin_current_thread`].
pub fn pin_current_thread_to(core: Option<usize>) -> Result<(), PinError> {
    core.map_or(Ok(()), pin_current_thread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_that_does_not_exist_is_an_error_not_a_panic() {
        for core in [usize::MAX, MAX_CORE_ID, 1023] {
            let e = std::thread::spawn(move || pin_current_thread(core)).join().unwrap().unwrap_err();
            assert_eq!(e.core, core);
        }
        assert_eq!(pin_current_thread_to(None), Ok(()));
    }
}
