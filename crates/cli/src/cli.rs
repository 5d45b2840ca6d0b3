//! The command-line grammar (clap derive). Names of commands are the contract of issue 4;
//! every read command has `--json`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ROOT_AFTER_HELP: &str = "\
Exit codes:
  0  ok
  1  verification refused (the image or the metadata is not what its owners signed)
  2  usage or configuration error
  3  registry or network failure (trying again may help)
  4  offline: the metadata expired (bring a fresh bundle)

Keys (KEY) are PKCS#8 PEM files (`ocituf key generate`, `openssl genpkey`), or env:VAR for a
PEM held in an environment variable (CI secrets).

Repositories (REPO) are registry.example.com/acme/tuf, or oci:DIR:acme/tuf for an OCI
image-layout directory that plays a whole registry (the embedded default, no registry needed).

Quick start (no registry):
  ocituf key generate --out root.pem
  ocituf key generate --out online.pem
  ocituf key generate --out team.pem
  ocituf init oci:./reg:acme/tuf --name acme --root-key root.pem --targets-key team.pem \\
      --snapshot-key online.pem --timestamp-key online.pem --out-root acme.root.json
  ocituf trust add 'oci:./reg:acme/*' --repo oci:./reg:acme/tuf --name acme --root acme.root.json
  ocituf sign oci:./reg:acme/app:1.0 --key team.pem
  ocituf publish oci:./reg:acme/tuf --name acme --snapshot-key online.pem --timestamp-key online.pem
  ocituf verify oci:./reg:acme/app:1.0";

/// ocituf: TUF roots of trust stored in OCI registries. Sign image tags, and verify that the
/// digest a registry gives for a tag is the one its owners signed.
#[derive(Debug, Parser)]
#[command(
    name = "ocituf",
    version,
    after_help = ROOT_AFTER_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The trust policy file [default: $XDG_CONFIG_HOME/ocituf/policy.toml]
    #[arg(
        long,
        global = true,
        env = "OCITUF_CONFIG",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Where verified metadata is cached [default: $XDG_CACHE_HOME/ocituf]
    #[arg(
        long,
        global = true,
        env = "OCITUF_CACHE_DIR",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub cache_dir: Option<PathBuf>,

    /// Extra CA certificates (a PEM bundle) trusted for registry TLS, besides the system's;
    /// registries on loopback addresses are then reached with HTTPS too
    #[arg(
        long,
        global = true,
        env = "OCITUF_CA_FILE",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub ca_file: Option<PathBuf>,

    /// Speak plain HTTP, without TLS, to every registry (loopback registries already get
    /// plain HTTP); only for a registry you reach over a network you trust
    #[arg(long, global = true, env = "OCITUF_PLAIN_HTTP", hide_env_values = true)]
    pub plain_http: bool,

    /// Print no progress lines on stderr (errors and warnings still appear)
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make and inspect signing keys
    #[command(subcommand)]
    Key(KeyCommand),

    /// Create a root of trust and publish its first versions
    #[command(after_help = "\
Examples:
  ocituf init oci:./reg:acme/tuf --name acme --root-key root.pem \\
      --targets-key targets.pem --snapshot-key online.pem --timestamp-key online.pem \\
      --out-root acme.root.json
  ocituf init registry.example.com/acme/tuf --name acme \\
      --root-key alice.pem --root-key bob.pem --root-threshold 2 \\
      --targets-key targets.pem --snapshot-key env:SNAPSHOT_KEY --timestamp-key env:TIMESTAMP_KEY")]
    Init(InitArgs),

    /// Delegate target patterns (acme/app:*) to a team role with its keys and threshold
    #[command(after_help = "\
Examples:
  ocituf delegate oci:./reg:acme/tuf --name acme --role app --path 'acme/app:*' \\
      --key team.pub.pem --signing-key targets.pem --root acme.root.json
  ocituf delegate registry.example.com/acme/tuf --name acme --role bins \\
      --path 'acme/*' --key ci.pem --hash-bins 16 --signing-key targets.pem")]
    Delegate(DelegateArgs),

    /// Projects: image patterns delegated to a team role and its maintainers
    #[command(subcommand)]
    Project(crate::cli_project::ProjectCommand),

    /// A project's maintainers: add, remove, list
    #[command(subcommand)]
    Maintainer(crate::cli_project::MaintainerCommand),

    /// Add signatures to a targets role's pending version; it is published once its threshold is met
    #[command(after_help = "\
`ocituf sign` with fewer keys than the role's threshold stores the new version as pending and
prints its content digest; other maintainers sign that content at any later time.

Examples:
  ocituf cosign registry.example.com/acme/tuf --name acme --role app --key bob.pem \\
      --expect sha256:4f1c…")]
    Cosign(crate::cli_project::CosignArgs),

    /// Sign the digest an image tag has now, into the team role responsible for it
    #[command(after_help = "\
The metadata repository comes from the trust policy entry that covers IMAGE, or --repo/--name.
The role is the last role in TUF pre-order search order whose patterns match the image's
target name (acme/app:1.4) and that KEY may sign; --role picks one explicitly. Concurrent
signers are safe: a version that lost a race is rebuilt on top of the winner.

Examples:
  docker push registry.example.com/acme/app:1.4
  ocituf sign registry.example.com/acme/app:1.4 --key env:ACME_APP_KEY
  ocituf sign oci:./reg:acme/app:1.0 --key team.pem --repo oci:./reg:acme/tuf --name acme
  ocituf sign reg.example.com/acme/app:1.4 reg.example.com/acme/api:2.0 --key team.pem
  built-images.sh | ocituf sign --from - --key team.pem --wait")]
    Sign(SignArgs),

    /// Remove an image tag's signature, so clients refuse it
    #[command(after_help = "\
Examples:
  ocituf yank registry.example.com/acme/app:1.3 --key env:ACME_APP_KEY")]
    Yank(SignArgs),

    /// Write a new snapshot and timestamp with the online keys
    #[command(after_help = "\
Clients see new or yanked targets only once a timestamp that reaches them is published.

Examples:
  ocituf publish oci:./reg:acme/tuf --name acme --snapshot-key online.pem --timestamp-key online.pem")]
    Publish(PublishArgs),

    /// Run the online signer: publish what publishers sign, re-sign before expiry
    #[command(after_help = "\
Holds the snapshot and timestamp keys of the roots of trust in the configuration. Every new
verified version of a targets role is published in one batch: one snapshot and one timestamp.
For this command the global --config names the signer's configuration (roots of trust, online
keys, expiries), not a trust policy; it is required. Runs until SIGINT or SIGTERM. See
docs/signer.md for the file's format.

Examples:
  ocituf serve --config signer.toml")]
    Serve(ServeArgs),

    /// Threshold signing of new root versions and key rotation
    #[command(subcommand)]
    Root(RootCommand),

    /// The trust policy: which root of trust vouches for which images
    #[command(subcommand)]
    Trust(TrustCommand),

    /// Verify an image and print its verified digest
    #[command(after_help = "\
Exit code 1 and a message naming the role, version and digests when the registry's digest for
the tag is not the one signed, or the metadata is expired, rolled back or badly signed.
With --offline only the trusted cache and --bundle DIR are read, never the network; expired
metadata is then refused with exit code 4 unless --danger-allow-expired.

Examples:
  ocituf verify registry.example.com/acme/app:1.4
  ocituf verify oci:./reg:acme/app:1.0 --json
  ocituf verify --offline --bundle ./acme-bundle registry-b.internal/acme/app:1.4")]
    Verify(VerifyArgs),

    /// Verify an image and print IMAGE@sha256:… for `docker pull`
    #[command(after_help = "\
Examples:
  docker pull \"$(ocituf resolve registry.example.com/acme/app:1.4)\"")]
    Resolve(VerifyArgs),

    /// Roles, versions, keys, thresholds, expiries and pending signatures of a root of trust
    #[command(after_help = "\
Examples:
  ocituf status oci:./reg:acme/tuf --name acme
  ocituf status registry.example.com/acme/tuf --name acme --json")]
    Status(StatusArgs),

    /// Write a static web site of a root of trust, built from verified metadata only
    #[command(after_help = "\
Writes DIR/index.html (inline CSS and JS, no external assets: open it from a file:// URL or
put DIR on any static host) and DIR/index.json (the search index). It shows the roles, keys,
thresholds and expiries (flagged before they come), pending root signatures, every signed
image with its digest and signing role, the verified history of versions, and for each
signed tag whether the registry's tag still points at the signed digest (a moved tag shows
as NOT signed).

Examples:
  ocituf site oci:./reg:acme/tuf --name acme --root root.json --out site
  ocituf site registry.example.com/acme/tuf --name acme --out /var/www/acme --warn-within 14d")]
    Site(SiteArgs),

    /// Push a tiny example OCI image (one file, no Docker needed) and print its digest
    #[command(after_help = "\
For the quick start and tests: something real to sign. Pushing again with another --message
moves the tag to a new digest (what an attacker who controls the registry could do).

Examples:
  ocituf example-image oci:./reg:acme/app:1.0
  ocituf example-image oci:./reg:acme/app:1.0 --message tampered")]
    ExampleImage(ExampleImageArgs),

    /// Serve a verifying registry mirror: manifests only when a root of trust signed them
    #[command(after_help = "\
Runtimes pull through it as a mirror (see `ocituf config`). A manifest by tag is served only when
the upstream's bytes for the tag are the signed ones; by digest only when that digest is signed or
listed by a signed index the proxy served; blobs stream through. Refusals are OCI errors (DENIED)
that name the role, version and digests. Decision logs go to stderr; counters to /metrics.

Examples:
  ocituf proxy
  ocituf proxy --listen 0.0.0.0:5005 --tls-cert proxy.crt --tls-key proxy.key \\
      --scope-mode 'registry.example.com/library/*=warn'")]
    Proxy(crate::cli_serve::ProxyArgs),

    /// Print the runtime configuration that sends pulls through the proxy, and only there
    #[command(after_help = "\
Examples:
  ocituf config podman --proxy proxy.example.com:5005 >> /etc/containers/registries.conf
  ocituf config containerd --proxy proxy.example.com:5005 --upstream registry.example.com
  ocituf config docker --proxy proxy.example.com:5005")]
    Config(crate::cli_serve::ConfigArgs),

    /// containerd 2 image verifier: allow a pull only when its digest is the signed one
    #[command(after_help = "\
containerd 2 calls every executable in the bindir plugin's bin_dir with -name REF -digest DIGEST
-stdin-media-type application/vnd.oci.descriptor.v1+json and the descriptor on stdin; exit 0
allows the pull, anything else blocks it, and stdout is the reason containerd shows.
Examples:
  # a wrapper in bin_dir, /opt/containerd/image-verifier/bin/ocituf:
  #!/bin/sh
  exec env OCITUF_CONFIG=/etc/ocituf/policy.toml OCITUF_CACHE_DIR=/var/cache/ocituf \\
      /usr/local/bin/ocituf containerd-verifier \"$@\"")]
    ContainerdVerifier(crate::cli_serve::ContainerdVerifierArgs),
    /// Air gap: export a root of trust and images to an OCI layout, import it elsewhere
    #[command(subcommand)]
    Bundle(crate::cmd::bundle::BundleCommand),
}

#[derive(Debug, Args)]
pub struct ExampleImageArgs {
    /// Where to push it: registry.example.com/acme/app:1.0 or oci:DIR:acme/app:1.0
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The content of the image's one file
    #[arg(long, default_value = "hello from ocituf", value_name = "TEXT")]
    pub message: String,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a private key (PKCS#8 PEM) and print its keyid
    #[command(after_help = "\
Keys made by `openssl genpkey -algorithm ed25519` (or EC P-256, RSA) work as well.

Examples:
  ocituf key generate --out team.pem
  ocituf key generate --type ecdsa-p256 --out online.pem --public-out online.pub.pem")]
    Generate(KeyGenerateArgs),

    /// Print the keyid and public key of a key (private or public PEM, or env:VAR)
    #[command(after_help = "\
Examples:
  ocituf key show team.pem
  ocituf key show env:ACME_APP_KEY --json")]
    Show(KeyShowArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    Ed25519,
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    Rsa,
}

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// Key algorithm
    #[arg(long = "type", value_enum, default_value = "ed25519")]
    pub key_type: KeyType,
    /// Where to write the private key (created with mode 0600; never overwritten)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write the public key (SubjectPublicKeyInfo PEM) here
    #[arg(long, value_name = "FILE")]
    pub public_out: Option<PathBuf>,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct KeyShowArgs {
    /// The key: a PEM file (private or public) or env:VAR
    pub key: String,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct Output {
    /// Print machine-readable JSON
    #[arg(long)]
    pub json: bool,
}

/// The metadata repository and root-of-trust name a command works on.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// The metadata repository: registry.example.com/acme/tuf or oci:DIR:acme/tuf
    #[arg(value_name = "REPO")]
    pub repo: String,
    /// The root-of-trust name inside the repository (several may share one repository)
    #[arg(long, short = 'n', value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// A root key (private: it signs root version 1); repeat for several holders
    #[arg(long = "root-key", value_name = "KEY", required = true)]
    pub root_keys: Vec<String>,
    /// Signatures needed on a root version
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub root_threshold: u32,
    /// A key of the top-level targets role (private; repeat for several)
    #[arg(long = "targets-key", value_name = "KEY", required = true)]
    pub targets_keys: Vec<String>,
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub targets_threshold: u32,
    /// The online snapshot key (private)
    #[arg(long, value_name = "KEY")]
    pub snapshot_key: String,
    /// The online timestamp key (private; may be the snapshot key)
    #[arg(long, value_name = "KEY")]
    pub timestamp_key: String,
    #[command(flatten)]
    pub expiry: Expiries,
    /// Write root version 1 here, to pin it with `ocituf trust add --root`
    #[arg(long, value_name = "FILE")]
    pub out_root: Option<PathBuf>,
    /// Snapshots sign a Merkle tree over the roles instead of listing each (TAP 16): a pull
    /// then fetches a few KiB however many hash bins there are. python-tuf cannot read
    /// such a repository's delegated roles.
    #[arg(long)]
    pub snapshot_merkle: bool,
    #[command(flatten)]
    pub output: Output,
}

/// Lifetimes of new versions: a duration (90d, 12h, 30m, 45s) or an RFC 3339 time.
#[derive(Debug, Args, Clone)]
#[allow(clippy::struct_field_names)] // the flags are --root-expires, --targets-expires, …
pub struct Expiries {
    #[arg(long, default_value = "365d", value_name = "WHEN")]
    pub root_expires: String,
    #[arg(long, default_value = "90d", value_name = "WHEN")]
    pub targets_expires: String,
    #[arg(long, default_value = "7d", value_name = "WHEN")]
    pub snapshot_expires: String,
    #[arg(long, default_value = "1d", value_name = "WHEN")]
    pub timestamp_expires: String,
}

#[derive(Debug, Args)]
pub struct DelegateArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The new (or changed) team role
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// A target path pattern the role is trusted for (acme/app:*); repeat for several
    #[arg(
        long = "path",
        value_name = "PATTERN",
        required_unless_present = "hash_bins"
    )]
    pub paths: Vec<String>,
    /// A key of the team role (public or private PEM, or env:VAR); repeat for several
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// Signatures needed on the team role
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threshold: u32,
    /// Stop the search at this role when its patterns match (TUF terminating delegation)
    #[arg(long)]
    pub terminating: bool,
    /// Delegate as N succinct hash bins (TAP 15; N a power of two) named ROLE-<bin>
    #[arg(long, value_name = "N")]
    pub hash_bins: Option<u32>,
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

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The image: registry.example.com/acme/app:1.4 or oci:DIR:acme/app:1.4; sign takes
    /// several (one new version per role touched), yank one
    #[arg(value_name = "IMAGE", required_unless_present = "from")]
    pub images: Vec<String>,
    /// Also sign the images listed in FILE, one a line (`-`: standard input; blank lines and
    /// lines starting with # are skipped)
    #[arg(long, value_name = "FILE")]
    pub from: Option<String>,
    /// A private key of the responsible role; repeat up to its threshold
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// The metadata repository [default: from the trust policy]
    #[arg(long, value_name = "REPO", requires = "name")]
    pub repo: Option<String>,
    /// The root-of-trust name [default: from the trust policy]
    #[arg(long, short = 'n', value_name = "NAME", requires = "repo")]
    pub name: Option<String>,
    #[command(flatten)]
    pub pin: PinArgs,
    /// Sign into this role instead of the one found by delegation patterns
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Lifetime of the new version of the role
    #[arg(long, default_value = "90d", value_name = "WHEN")]
    pub expires: String,
    /// Return only once clients can see the image: it verifies, as `ocituf verify` would,
    /// through a timestamp published by the online signer (or `ocituf publish`)
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits before it gives up (exit 5)
    #[arg(
        long,
        default_value = "10m",
        value_name = "DURATION",
        requires = "wait"
    )]
    pub wait_timeout: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub pin: PinArgs,
    #[arg(long, value_name = "KEY")]
    pub snapshot_key: String,
    #[arg(long, value_name = "KEY")]
    pub timestamp_key: String,
    #[arg(long, default_value = "7d", value_name = "WHEN")]
    pub snapshot_expires: String,
    #[arg(long, default_value = "1d", value_name = "WHEN")]
    pub timestamp_expires: String,
}

#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Add signatures to the pending root version; it is published once its threshold is met
    #[command(after_help = "\
Examples:
  ocituf root sign registry.example.com/acme/tuf --name acme --key bob.pem")]
    Sign(RootSignArgs),

    /// Start a new root version that changes a role's keys or threshold
    #[command(after_help = "\
The new version is signed with the given root keys. It is published at once when it meets the
thresholds of both the old and the new root; otherwise it waits in the registry as a pending
version until enough holders run `ocituf root sign`.

Examples:
  ocituf root rotate oci:./reg:acme/tuf --name acme --role timestamp \\
      --add-key new-online.pem --remove-key 1f2e… --key root.pem")]
    Rotate(RootRotateArgs),
}

#[derive(Debug, Args)]
pub struct RootSignArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub pin: PinArgs,
    /// A private root key (old or new); repeat for several
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// The content digest of the pending root to sign (`sha256:…`, printed by
    /// `ocituf root rotate` and `ocituf status`); required when rival pending roots exist
    #[arg(long, value_name = "DIGEST")]
    pub expect: Option<String>,
}

#[derive(Debug, Args)]
pub struct RootRotateArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub pin: PinArgs,
    /// The top-level role to change: root, targets, snapshot or timestamp
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// A key to add to the role (public or private PEM, or env:VAR)
    #[arg(long = "add-key", value_name = "KEY")]
    pub add_keys: Vec<String>,
    /// A keyid to remove from the role
    #[arg(long = "remove-key", value_name = "KEYID")]
    pub remove_keys: Vec<String>,
    /// The role's new threshold
    #[arg(long, value_name = "N")]
    pub threshold: Option<u32>,
    /// A private root key to sign the new version with; repeat for several
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    #[arg(long, default_value = "365d", value_name = "WHEN")]
    pub expires: String,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust a root of trust for the images in SCOPE
    #[command(after_help = "\
SCOPE is a repository (registry.example.com/acme/app) or everything below a path
(registry.example.com/acme/*, oci:DIR:acme/*). The most specific scope that matches wins.
The pinned root is copied next to the policy file and its sha256 recorded.

Examples:
  ocituf trust add 'registry.example.com/acme/*' --repo registry.example.com/acme/tuf \\
      --name acme --root acme.root.json
  ocituf trust add 'registry.example.com/acme/*' --repo registry.example.com/acme/tuf \\
      --name acme --root-sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    Add(TrustAddArgs),

    /// List the trust policy
    List(ListArgs),

    /// Remove the entry for SCOPE
    #[command(after_help = "\
Examples:
  ocituf trust remove 'registry.example.com/acme/*'")]
    Remove(TrustRemoveArgs),
}

#[derive(Debug, Args)]
pub struct TrustAddArgs {
    /// The images this root of trust vouches for
    #[arg(value_name = "SCOPE")]
    pub scope: String,
    /// The metadata repository
    #[arg(long, value_name = "REPO")]
    pub repo: String,
    /// The root-of-trust name inside the repository
    #[arg(long, short = 'n', value_name = "NAME")]
    pub name: String,
    /// The pinned initial root (a root.json you got out of band)
    #[arg(long, value_name = "FILE", required_unless_present = "root_sha256")]
    pub root: Option<PathBuf>,
    /// The sha256 of the initial root; without --root, root version 1 is fetched and checked
    #[arg(long, value_name = "HEX")]
    pub root_sha256: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct TrustRemoveArgs {
    #[arg(value_name = "SCOPE")]
    pub scope: String,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image: registry.example.com/acme/app:1.4, …@sha256:…, or oci:DIR:acme/app:1.4
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// For a multi-arch image: also select this platform (os/architecture[/variant]) from
    /// the verified index, and print its manifest digest (not with --offline yet)
    #[arg(long, value_name = "OS/ARCH", conflicts_with = "offline")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub offline: crate::cmd::bundle::OfflineArgs,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub pin: PinArgs,
    /// Warn about versions that expire within this time
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub warn_within: String,
    /// Read every hash bin, not a sample (one listing per bin: slow with many bins)
    #[arg(long)]
    pub all: bool,
    /// How many bins of each hash-bin delegation to read
    #[arg(long, default_value_t = 32, value_name = "N", conflicts_with = "all")]
    pub sample: u64,
    /// Which bins the sample takes (printed by status; the same seed reads the same bins)
    /// [default: from the clock, so that runs over time look at every bin]
    #[arg(long, value_name = "N", conflicts_with = "all")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct SiteArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub pin: PinArgs,
    /// The directory to write the site into (created when missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Flag versions that expire within this time
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub warn_within: String,
    /// Where the signed images live, for the "verified now" column: a registry host or
    /// oci:DIR [default: the metadata repository's registry or layout]
    #[arg(long, value_name = "LOCATION")]
    pub images: Option<String>,
}

/// The pinned root a command checks the registry's root chain against.
#[derive(Debug, Args)]
pub struct PinArgs {
    /// The pinned root version 1 (`init --out-root`) [default: from the trust policy entry
    /// for this repository and name]
    #[arg(long = "root", value_name = "FILE")]
    pub root: Option<PathBuf>,
    /// DANGEROUS: with no pin, trust whatever root version 1 the registry serves
    #[arg(long, conflicts_with = "root")]
    pub danger_trust_on_first_use: bool,
}
