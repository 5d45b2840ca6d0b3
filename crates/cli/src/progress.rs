//! Short progress lines on stderr for long work (`ocituf: loading 64 hash bins…`). Never on
//! stdout, which stays machine-readable; `--quiet` turns them off.

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// Turn progress lines off (`--quiet`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Print `ocituf: <msg>` on stderr unless `--quiet`.
pub fn note(msg: std::fmt::Arguments<'_>) {
    if !QUIET.load(Ordering::Relaxed) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "ocituf: {msg}");
    }
}

/// The line a signer prints when another writer's version won the race.
pub fn race_message(role: &str, winner_version: u64, attempt: u32, max: u32) -> String {
    format!(
        "lost a race with another signer of role {role:?}, retrying on top of version \
         {winner_version} (attempt {attempt}/{max})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn race_message_names_role_version_and_attempt() {
        assert_eq!(
            race_message("app", 7, 2, 32),
            "lost a race with another signer of role \"app\", retrying on top of version 7 (attempt 2/32)"
        );
    }
}
