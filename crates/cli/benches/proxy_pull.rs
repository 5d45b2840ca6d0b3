//! What the verifying proxy costs a real pull (issue 8): a 200 MB image pulled with skopeo
//! through `ocituf proxy` and directly from the same registry, in the same run, rounds
//! alternating; and how many warm manifest decisions per second the proxy makes.
//!
//! Set-up: distribution 2.8 from the testkit on 127.0.0.1, a root of trust made with the
//! `ocituf` binary, an image of 4 incompressible 50 MiB layers pushed with skopeo and
//! signed, then `ocituf proxy` (the same build profile as this bench) in front of it.
//!
//! - pull: `skopeo copy docker://… dir:OUT`, median of `ROUNDS` per path; the ratio is
//!   proxy / direct (issue target: at most 1.05).
//! - decisions: `THREADS` threads GET the signed tag's manifest `REQUESTS` times in all
//!   (one TCP connection per request); every answer is checked to be 200 with the signed
//!   bytes. Each decision asks the upstream for the tag's manifest and hashes it: what the
//!   proxy does for every real pull.
//!
//! Run: `cargo bench -p ocituf --bench proxy_pull`. Prints a table on stdout; exits
//! non-zero when a pull or a decision fails.

// Figures are printed as floats; the counts are far below 2^52.
#![allow(clippy::cast_precision_loss)]

use std::io::{BufRead as _, Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ocituf_oci::Digest;
use ocituf_testkit::Distribution;

const ROUNDS: usize = 9;
const LAYERS: usize = 4;
const LAYER_BYTES: usize = 50 * 1024 * 1024;
const THREADS: usize = 8;
const REQUESTS: usize = 2000;

fn ocituf(home: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_ocituf"))
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "ocituf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn skopeo(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new(ocituf_testkit::skopeo());
    cmd.arg("--insecure-policy").args(args);
    ocituf_testkit::run_with_timeout(&mut cmd, Duration::from_secs(600))
        .map(|_| ())
        .with_context(|| format!("skopeo {args:?}"))
}

/// Deterministic incompressible bytes (xorshift64*).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn put_blob(dir: &Path, bytes: &[u8]) -> Result<(Digest, usize)> {
    let d = Digest::of(bytes);
    let p = dir.join("blobs/sha256").join(d.hex());
    std::fs::create_dir_all(p.parent().context("blob dir")?)?;
    std::fs::write(p, bytes)?;
    Ok((d, bytes.len()))
}

/// An OCI layout holding the big image under `big`.
fn big_image(dir: &Path) -> Result<u64> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut total = 0u64;
    for i in 0..LAYERS {
        let (d, len) = put_blob(dir, &noise(i as u64 + 7, LAYER_BYTES))?;
        total += len as u64;
        diff_ids.push(d.as_str().to_owned());
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.as_str(), "size": len,
        }));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))?;
    let (cd, cl) = put_blob(dir, &config)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": cl},
        "layers": layers,
    }))?;
    let (md, ml) = put_blob(dir, &manifest)?;
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": md.as_str(), "size": ml,
                           "annotations": {"org.opencontainers.image.ref.name": "big"}}],
        }))?,
    )?;
    Ok(total)
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_proxy(home: &Path) -> Result<(Proxy, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocituf"))
        .current_dir(home)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .args([
            "--quiet",
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--stop-after",
            "1800s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let addr = line
        .trim()
        .rsplit_once("://")
        .map(|(_, a)| a.to_owned())
        .context("proxy address")?;
    Ok((Proxy(child), addr))
}

fn timed_pull(src: &str, out: &Path) -> Result<Duration> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out)?;
    let started = Instant::now();
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        src,
        &format!("dir:{}", out.display()),
    ])?;
    Ok(started.elapsed())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn manifest_get(addr: &str, path: &str) -> Result<(u16, Vec<u8>)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP head")?;
    let status = String::from_utf8_lossy(&raw[..split])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, raw[split + 4..].to_vec()))
}

fn run() -> Result<()> {
    let registry = Distribution::start();
    let work = tempfile::tempdir()?;
    let home = work.path();
    let reg = registry.addr();
    for k in ["root", "targets", "online"] {
        ocituf(home, &["key", "generate", "--out", &format!("{k}.pem")])?;
    }
    let tuf = format!("{reg}/acme/tuf");
    ocituf(
        home,
        &[
            "init",
            &tuf,
            "--name",
            "acme",
            "--root-key",
            "root.pem",
            "--targets-key",
            "targets.pem",
            "--snapshot-key",
            "online.pem",
            "--timestamp-key",
            "online.pem",
            "--out-root",
            "acme.root.json",
        ],
    )?;
    ocituf(
        home,
        &[
            "trust",
            "add",
            &format!("{reg}/acme/*"),
            "--repo",
            &tuf,
            "--name",
            "acme",
            "--root",
            "acme.root.json",
        ],
    )?;
    let layout = home.join("big-layout");
    let total = big_image(&layout)?;
    let image = format!("{reg}/acme/big:1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:big", layout.display()),
        &format!("docker://{image}"),
    ])?;
    ocituf(home, &["sign", &image, "--key", "targets.pem"])?;
    ocituf(
        home,
        &[
            "publish",
            &tuf,
            "--name",
            "acme",
            "--snapshot-key",
            "online.pem",
            "--timestamp-key",
            "online.pem",
        ],
    )?;
    let signed = ocituf(home, &["verify", &image])?.trim().to_owned();
    let (_proxy, addr) = start_proxy(home)?;
    let via_proxy = format!("docker://{addr}/{}/acme/big:1", reg.replace(':', "-"));
    let direct = format!("docker://{image}");

    // One pull of each first (the proxy's cold refresh, the page cache), not counted.
    let out = home.join("out");
    timed_pull(&direct, &out)?;
    timed_pull(&via_proxy, &out)?;
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate which goes first, so drift in the machine's load hits both.
        if round % 2 == 0 {
            d.push(timed_pull(&direct, &out)?);
            p.push(timed_pull(&via_proxy, &out)?);
        } else {
            p.push(timed_pull(&via_proxy, &out)?);
            d.push(timed_pull(&direct, &out)?);
        }
    }
    let (dm, pm) = (median(&mut d), median(&mut p));
    let ratio = pm.as_secs_f64() / dm.as_secs_f64();

    let path = format!("/v2/{}/acme/big/manifests/1", reg.replace(':', "-"));
    let started = Instant::now();
    let per_thread = REQUESTS / THREADS;
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    for _ in 0..per_thread {
                        let (status, body) = manifest_get(&addr, &path)?;
                        ensure!(status == 200, "decision answered {status}");
                        ensure!(Digest::of(&body).as_str() == signed, "not the signed bytes");
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a thread panicked"))??;
        }
        Ok(())
    })?;
    let elapsed = started.elapsed();
    let rate = (per_thread * THREADS) as f64 / elapsed.as_secs_f64();

    println!("| figure | value |");
    println!("|---|---|");
    println!("| image | {LAYERS} layers, {:.1} MB |", total as f64 / 1e6);
    println!(
        "| skopeo copy direct, median of {ROUNDS} | {:.3} s ({:?}) |",
        dm.as_secs_f64(),
        d.iter()
            .map(|x| format!("{:.2}", x.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    println!(
        "| skopeo copy through the proxy, median of {ROUNDS} | {:.3} s ({:?}) |",
        pm.as_secs_f64(),
        p.iter()
            .map(|x| format!("{:.2}", x.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    println!("| proxy / direct | {ratio:.3}x |");
    println!(
        "| warm manifest decisions, {THREADS} threads, {} requests | {rate:.0} per second ({:.3} s) |",
        per_thread * THREADS,
        elapsed.as_secs_f64()
    );
    if ratio > 1.05 {
        bail!(
            "the proxy costs {:.1}% over a direct pull (target: 5%)",
            (ratio - 1.0) * 100.0
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxy_pull: {e:#}");
            ExitCode::FAILURE
        }
    }
}
