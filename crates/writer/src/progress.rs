//! Progress lines for long work (`loading 64 hash bins…`, `lost a race…`). The library never
//! prints: the caller decides where they go (the CLI's stderr, the server's log).

use std::fmt;
use std::sync::Arc;

/// Where progress lines go: a callback, or nowhere.
#[derive(Clone)]
pub struct Progress(Option<Sink>);

type Sink = Arc<dyn Fn(&str) + Send + Sync>;

impl Progress {
    /// Progress lines are dropped.
    pub fn silent() -> Self {
        Self(None)
    }

    /// Each line is passed to `f`.
    pub fn to(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    /// Report one line.
    pub fn note(&self, msg: fmt::Arguments<'_>) {
        if let Some(f) = &self.0 {
            f(&msg.to_string());
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(callback)"
        } else {
            "Progress(silent)"
        })
    }
}

/// The line a signer reports when another writer's version won the race.
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

    #[test]
    fn silent_progress_drops_lines_and_a_callback_gets_them() {
        Progress::silent().note(format_args!("dropped"));
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = got.clone();
        let p = Progress::to(move |l| sink.lock().unwrap().push(l.to_owned()));
        p.note(format_args!("loading {} bins", 4));
        assert_eq!(*got.lock().unwrap(), vec!["loading 4 bins".to_owned()]);
    }
}
