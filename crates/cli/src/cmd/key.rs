//! `ocituf key generate|show`.

use std::io::Write as _;

use ocituf_resolver::ErrorKind;
use ocituf_tuf::crypto::{KeyKind, PrivateKey, PublicKey, Signer as _};

use crate::cli::{KeyCommand, KeyGenerateArgs, KeyShowArgs, KeyType};
use crate::failure::{fail, ResultExt as _};
use ocituf_writer::keys;

pub fn run(cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Generate(a) => generate(&a),
        KeyCommand::Show(a) => show(&a),
    }
}

/// Create `path` with `bytes`, never overwriting, readable by the owner only.
fn write_new(path: &std::path::Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            fail(
                ErrorKind::Config,
                format!(
                    "{} exists: ocituf never overwrites a key; choose another --out",
                    path.display()
                ),
            )
        } else {
            anyhow::Error::new(e).context(format!("could not create {}", path.display()))
        }
    })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .config(|| format!("could not write {}", path.display()))
}

fn describe(
    key: &PublicKey,
    keyid: &str,
    json: bool,
    extra: &[(&str, String)],
) -> anyhow::Result<()> {
    if json {
        let mut v = serde_json::json!({
            "keyid": keyid,
            "keytype": key.keytype,
            "scheme": key.scheme,
            "public_pem": keys::public_pem(key)?,
        });
        for (k, val) in extra {
            v[*k] = serde_json::Value::String(val.clone());
        }
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!("{keyid}");
    }
    Ok(())
}

fn generate(a: &KeyGenerateArgs) -> anyhow::Result<()> {
    let kind = match a.key_type {
        KeyType::Ed25519 => KeyKind::Ed25519,
        KeyType::EcdsaP256 => KeyKind::EcdsaP256,
        KeyType::Rsa => KeyKind::RsaPss,
    };
    let key = PrivateKey::generate(kind).config(|| "could not generate the key".to_owned())?;
    let pem = key
        .to_pkcs8_pem()
        .config(|| "could not encode the key as PKCS#8 PEM".to_owned())?;
    write_new(&a.out, pem.as_bytes(), true)?;
    let public = key.public_key().clone();
    if let Some(p) = &a.public_out {
        write_new(p, keys::public_pem(&public)?.as_bytes(), false)?;
    }
    let keyid = keys::key_id(&public)?;
    eprintln!(
        "wrote {} key {} to {}",
        public.keytype,
        &keyid[..16],
        a.out.display()
    );
    describe(
        &public,
        &keyid,
        a.output.json,
        &[("path", a.out.display().to_string())],
    )
}

fn show(a: &KeyShowArgs) -> anyhow::Result<()> {
    let public = keys::load_public(&a.key)?;
    let keyid = keys::key_id(&public)?;
    if !a.output.json {
        outln!("keyid:   {keyid}");
        outln!("type:    {} ({})", public.keytype, public.scheme);
        out!("{}", keys::public_pem(&public)?);
        return Ok(());
    }
    describe(&public, &keyid, true, &[])
}
