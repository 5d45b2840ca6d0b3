//! `ocituf-conformance`: the client-under-test of the TUF conformance suite
//! (theupdateframework/tuf-conformance), a thin shell over ocituf's [`Updater`] with the
//! standard HTTP layout ([`HttpSource`]) and a metadata directory ([`FsStore`]).
//!
//! It speaks the suite's CLI protocol (its `CLIENT-CLI.md`):
//!
//! ```text
//! ocituf-conformance --metadata-dir MD init ROOT
//! ocituf-conformance --metadata-url URL --metadata-dir MD refresh
//! ocituf-conformance --metadata-url URL --metadata-dir MD --target-name T [--target-name T ...]
//!                    --target-dir TD --target-base-url URL download
//! ```
//!
//! Exit status 0 on success and exactly 1 on any failure: a verification refusal, a usage
//! error (clap's own status 2 is overridden) or a panic (caught). `init` makes no request and
//! copies ROOT byte for byte to `MD/root.json`; afterwards `MD` holds only the verified
//! metadata of each role under its unversioned name (`RootHistory::Off`), byte-exact.
//! Targets are stored in `TD` under their percent-encoded path, and one already there with
//! the signed length and hashes is not downloaded again.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use ocituf_tuf::fs_store::ROLE_NAME_ENCODE_SET;
use ocituf_tuf::fsio;
use ocituf_tuf::updater::verify_target;
use ocituf_tuf::{
    FsStore, HttpConfig, HttpSource, RootHistory, SystemClock, TargetInfo, TrustedStore, Updater,
    UpdaterConfig,
};
use percent_encoding::utf8_percent_encode;

/// The largest trusted root file `init` accepts (python-tuf's default root limit is 512 kB).
const MAX_ROOT_FILE: u64 = 16 * 1024 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "ocituf-conformance",
    version,
    about = "TUF conformance-suite client over ocituf's updater"
)]
struct Cli {
    /// Base URL of the repository's metadata.
    #[arg(long)]
    metadata_url: Option<String>,
    /// Directory of the trusted metadata (one ROLE.json per role).
    #[arg(long)]
    metadata_dir: PathBuf,
    /// Target path to download (repeatable; processed in order).
    #[arg(long = "target-name")]
    target_names: Vec<String>,
    /// Directory the downloaded targets are written to.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Base URL of the repository's targets.
    #[arg(long)]
    target_base_url: Option<String>,
    /// More output (accepted for compatibility; errors are always printed).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Trust TRUSTED_ROOT: copy it to METADATA_DIR/root.json (no request is made).
    Init { trusted_root: PathBuf },
    /// Update the top-level metadata following the TUF client workflow.
    Refresh,
    /// Refresh, then download and verify every --target-name into --target-dir.
    Download,
}

fn main() -> ExitCode {
    // A panic is a failure like any other: report it and exit 1 (never 101).
    panic::set_hook(Box::new(|info| {
        eprintln!("ocituf-conformance: internal error: {info}");
    }));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let cli = match Cli::try_parse() {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                return match e.kind() {
                    clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                    _ => ExitCode::from(1),
                };
            }
        };
        match run(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ocituf-conformance: error: {e:#}");
                ExitCode::from(1)
            }
        }
    }));
    outcome.unwrap_or(ExitCode::from(1))
}

fn run(cli: &Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async {
        match &cli.command {
            Command::Init { trusted_root } => init(&cli.metadata_dir, trusted_root).await,
            Command::Refresh => {
                let mut updater = updater(cli).await?;
                updater.refresh().await.context("refresh failed")?;
                Ok(())
            }
            Command::Download => download(cli).await,
        }
    })
}

async fn init(metadata_dir: &Path, trusted_root: &Path) -> Result<()> {
    let bytes = read_bounded(trusted_root, MAX_ROOT_FILE)
        .with_context(|| format!("could not read the trusted root {}", trusted_root.display()))?;
    let store = FsStore::open(metadata_dir, RootHistory::Off)?;
    store.store("root", &bytes).await?;
    Ok(())
}

/// A local file read through [`fsio::read_bounded`]; absent is an error here.
fn read_bounded(path: &Path, max_len: u64) -> Result<Vec<u8>> {
    fsio::read_bounded(path, max_len)?.with_context(|| format!("{} does not exist", path.display()))
}

async fn updater(cli: &Cli) -> Result<Updater<HttpSource, FsStore, SystemClock>> {
    let Some(metadata_url) = &cli.metadata_url else {
        bail!("--metadata-url is required for this command");
    };
    let store = FsStore::open(&cli.metadata_dir, RootHistory::Off)?;
    let config = UpdaterConfig::default();
    // The trust anchor is what `init` copied (or the newest root a refresh verified): like
    // python-tuf's reference client, this CLI is told to trust its metadata directory.
    let anchor = store
        .load("root", config.root_max_len)
        .await?
        .context("no trusted root in the metadata directory: run init first")?;
    let source = HttpSource::new(
        metadata_url,
        cli.target_base_url.as_deref(),
        &HttpConfig::default(),
    )?;
    Ok(Updater::new(&anchor, source, store, config, SystemClock).await?)
}

async fn download(cli: &Cli) -> Result<()> {
    let Some(target_dir) = &cli.target_dir else {
        bail!("--target-dir is required for download");
    };
    if cli.target_base_url.is_none() {
        bail!("--target-base-url is required for download");
    }
    if cli.target_names.is_empty() {
        bail!("--target-name is required for download");
    }
    let mut updater = updater(cli).await?;
    updater.refresh().await.context("refresh failed")?;
    fs::create_dir_all(target_dir)
        .with_context(|| format!("could not create {}", target_dir.display()))?;
    for name in &cli.target_names {
        let info = updater
            .target_info(name)
            .await
            .with_context(|| format!("could not look up target {name:?}"))?
            .with_context(|| format!("target {name:?} is not in the repository"))?;
        let path = target_dir.join(target_file_name(name));
        if cached_target_matches(&path, &info) {
            continue;
        }
        let bytes = updater
            .download_target(&info)
            .await
            .with_context(|| format!("could not download target {name:?}"))?;
        write_atomic(&path, &bytes)
            .with_context(|| format!("could not write target {name:?} to {}", path.display()))?;
    }
    Ok(())
}

/// The file name of a target in the target directory: its whole path percent-encoded
/// (python-tuf's choice), with `.` and `..` encoded too so that no path names a directory.
fn target_file_name(target_path: &str) -> String {
    let encoded = utf8_percent_encode(target_path, ROLE_NAME_ENCODE_SET).to_string();
    if encoded.is_empty() || encoded.bytes().all(|b| b == b'.') {
        "%2E".repeat(encoded.len().max(1))
    } else {
        encoded
    }
}

/// Whether `path` already holds the target `info` describes (its trusted length and every
/// trusted hash match; a hash algorithm we cannot compute means "not cached").
fn cached_target_matches(path: &Path, info: &TargetInfo) -> bool {
    read_bounded(path, info.length).is_ok_and(|bytes| verify_target(info, &bytes).is_ok())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    fsio::write_atomic(path, bytes).with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_file_names_never_name_a_directory() {
        assert_eq!(target_file_name("a/b.txt"), "a%2Fb.txt");
        assert_eq!(target_file_name("../x"), "..%2Fx");
        assert_eq!(target_file_name(".."), "%2E%2E");
        assert_eq!(target_file_name("."), "%2E");
        assert_eq!(target_file_name(""), "%2E");
    }
}
