//! The grammar of the team commands: `project create` and `maintainer add|remove|list`
//! (kept apart from `cli.rs`, which holds the signing and verifying commands).

use clap::{Args, Subcommand};

use crate::cli::{PinArgs, RepoArgs};

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project: delegate image patterns to a new team role with its maintainers' keys
    #[command(after_help = "\
The project is a new version of the delegating role (default: targets), signed with
--signing-key. Its maintainers then sign images with `ocituf sign`; change them with
`ocituf maintainer add|remove`.

Examples:
  ocituf project create oci:./reg:acme/tuf --name acme --project app --path 'acme/app:*' \\
      --maintainer alice.pub.pem --maintainer bob.pub.pem --maintainer carol.pub.pem \\
      --threshold 2 --signing-key targets.pem --root acme.root.json")]
    Create(ProjectCreateArgs),
}

#[derive(Debug, Args)]
pub struct ProjectCreateArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The new project's team role
    #[arg(long, value_name = "ROLE")]
    pub project: String,
    /// An image pattern the project is trusted for (acme/app:*); repeat for several
    #[arg(long = "path", value_name = "PATTERN", required = true)]
    pub paths: Vec<String>,
    /// A maintainer's key (public or private PEM, TUF key JSON, or env:VAR); repeat
    #[arg(long = "maintainer", value_name = "KEY", required = true)]
    pub maintainers: Vec<String>,
    /// Maintainer signatures needed on each version of the project's role
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threshold: u32,
    /// Stop the search at this role when its patterns match (TUF terminating delegation)
    #[arg(long)]
    pub terminating: bool,
    /// The delegating role (default: the top-level targets role)
    #[arg(long, default_value = "targets", value_name = "ROLE")]
    pub from: String,
    /// A private key of the delegating role; repeat up to its threshold
    #[arg(long = "signing-key", value_name = "KEY", required = true)]
    pub signing_keys: Vec<String>,
    #[command(flatten)]
    pub pin: PinArgs,
    /// Lifetime of the new version of the delegating role
    #[arg(long, default_value = "90d", value_name = "WHEN")]
    pub expires: String,
}

#[derive(Debug, Subcommand)]
pub enum MaintainerCommand {
    /// Add a maintainer's key to a project (a new version of the delegating role)
    #[command(after_help = "\
Examples:
  ocituf maintainer add oci:./reg:acme/tuf --name acme --project app --key dave.pub.pem \\
      --signing-key targets.pem")]
    Add(MaintainerChangeArgs),
    /// Remove a maintainer's key from a project (refused below the project's threshold)
    #[command(after_help = "\
KEY is a key file (or env:VAR) or at least 8 hex digits of a keyid from `maintainer list`.

Examples:
  ocituf maintainer remove oci:./reg:acme/tuf --name acme --project app --key 1f2e3d4c \\
      --signing-key targets.pem")]
    Remove(MaintainerChangeArgs),
    /// List a project's maintainers and threshold, from verified metadata
    #[command(after_help = "\
Examples:
  ocituf maintainer list registry.example.com/acme/tuf --name acme --project app --json")]
    List(MaintainerListArgs),
}

#[derive(Debug, Args)]
pub struct MaintainerChangeArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The project (team role)
    #[arg(long, value_name = "ROLE")]
    pub project: String,
    /// The maintainer's key
    #[arg(long, value_name = "KEY")]
    pub key: String,
    /// The project's new threshold [default: unchanged]
    #[arg(long, value_name = "N")]
    pub threshold: Option<u32>,
    /// A private key of the delegating role; repeat up to its threshold
    #[arg(long = "signing-key", value_name = "KEY", required = true)]
    pub signing_keys: Vec<String>,
    #[command(flatten)]
    pub pin: PinArgs,
    /// Lifetime of the new version of the delegating role
    #[arg(long, default_value = "90d", value_name = "WHEN")]
    pub expires: String,
}

#[derive(Debug, Args)]
pub struct MaintainerListArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The project (team role)
    #[arg(long, value_name = "ROLE")]
    pub project: String,
    #[command(flatten)]
    pub pin: PinArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CosignArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The targets role whose pending version to sign (a project)
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// A private key of the role; repeat for several
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// The content digest of the pending version to sign (what `ocituf sign` printed);
    /// required when rival pending versions exist
    #[arg(long, value_name = "DIGEST")]
    pub expect: Option<String>,
    #[command(flatten)]
    pub pin: PinArgs,
}
