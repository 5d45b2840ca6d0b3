//! The listening side over TLS (`--tls-cert`, `--tls-key`): skopeo verifies the proxy's
//! certificate against a CA made for the test and pulls a signed image; plain HTTP to the
//! TLS port gets no answer.

use std::path::Path;
use std::process::Command;

use ocituf_testkit::Distribution;

use crate::flows::{self, Place};
use crate::proxy_support::{prefix, skopeo, ProxyProcess};
use crate::support::Env;

/// A CA and a certificate for IP 127.0.0.1 signed by it (P-256), with the openssl command.
fn certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}: run `{}`", ocituf_testkit::INSTALL_COMMAND));
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ca.key",
    ]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-subj",
        "/CN=ocituf test CA",
        "-days",
        "2",
        "-out",
        "ca.crt",
    ]);
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "server.key",
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        "server.key",
        "-subj",
        "/CN=127.0.0.1",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
}

#[test]
fn skopeo_pulls_through_the_proxy_over_tls_with_its_certificate_verified() {
    let registry = Distribution::start();
    let env = Env::new();
    let p = Place {
        prefix: format!("{}/", registry.addr()),
    };
    flows::set_up(&env, &p);
    let image = p.repo("acme/app:1.0");
    flows::push_image(&env, &image, "one");
    env.run(&["sign", &image, "--key", "app.pem"]).ok();
    flows::publish(&env, &p).ok();

    let tls = env.path("tls");
    certificates(&tls);
    // skopeo's cert dir holds the CA as *.crt; the server's files must not be in it.
    let trust = env.path("trust");
    std::fs::create_dir_all(&trust).unwrap();
    std::fs::copy(tls.join("ca.crt"), trust.join("ca.crt")).unwrap();
    let cert = tls.join("server.pem").display().to_string();
    let key = tls.join("server.key").display().to_string();
    let proxy = ProxyProcess::start(&env, &["--tls-cert", &cert, "--tls-key", &key]);
    let src = format!(
        "docker://{}/{}/acme/app:1.0",
        proxy.addr,
        prefix(registry.addr())
    );
    let out = env.path("pulled");
    std::fs::create_dir_all(&out).unwrap();
    let got = skopeo(&[
        "copy",
        "--src-cert-dir",
        trust.to_str().unwrap(),
        &src,
        &format!("oci:{}:x", out.display()),
    ]);
    assert!(got.ok, "{got:#?}\nproxy log:\n{}", proxy.log());
    // Without the CA, skopeo refuses the certificate: TLS is really on.
    let got = skopeo(&["inspect", "--raw", &src]);
    assert!(!got.ok, "{got:#?}");
    assert!(got.stderr.contains("certificate"), "{got:#?}");
}
