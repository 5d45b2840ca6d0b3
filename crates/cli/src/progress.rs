//! Short progress lines on stderr for long work (`ocituf: loading 64 hash bins…`). Never on
//! stdout, which stays machine-readable; `--quiet` turns them off.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Turn progress lines off (`--quiet`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `--quiet` was given.
pub fn is_quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Print `ocituf: <msg>` on stderr unless `--quiet`.
pub fn note(msg: std::fmt::Arguments<'_>) {
    if !QUIET.load(Ordering::Relaxed) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "ocituf: {msg}");
    }
}
