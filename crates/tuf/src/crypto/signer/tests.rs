//! Interop vectors: keys made by `openssl genpkey`, signatures and keyids made by
//! securesystemslib 1.6.0 (`CryptoSigner`) over `ocituf test message`. Test keys only.

use super::*;
use crate::crypto::{PublicKey, VerifyingKey};

const MSG: &[u8] = b"ocituf test message";

const ED_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHXqJIjJppXbLuPOJgGKk/0kDyE65T3F45GIr5M1O4go
-----END PRIVATE KEY-----
";
const ED_KEY: &str = r#"{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "e08136a2a9ea5adedbecdafef6eb3f0545247e329242b8ea5097e25285bda7b6"}}"#;
const ED_KEYID: &str = "5888c958545915b15a693c70f96b19e7548c2fee05cf39775667740d651a35be";
const ED_SIG: &str = "e360b6acea47fa674a0b914db24c4187a48b454dd888328ab0395d1d9b64493e172f262fd21c6af14a51ec885d87409bc243e4626244cb66d60bea79c0f0a103";
const EC_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgidNIFk/jwOUNwQsj
AW0aByC6pf2p7g4RwmRSGeE3vzGhRANCAAQL9OhJhR+p3rNSl+xuP0oZNiltX9Fa
4psn/MkV0B8qXQDV/9jz8He0Nercxzdk4KhYqk3lmyX7yZB3s2h8V0KX
-----END PRIVATE KEY-----
";
const EC_KEY: &str = r#"{"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC/ToSYUfqd6zUpfsbj9KGTYpbV/R\nWuKbJ/zJFdAfKl0A1f/Y8/B3tDXq3Mc3ZOCoWKpN5Zsl+8mQd7NofFdClw==\n-----END PUBLIC KEY-----\n"}}"#;
const EC_KEYID: &str = "e2c8852f18d37e8e55807a85ce9724d7b54700c6b739bff0bc0df6076bf6176b";
const EC_SIG: &str = "3045022100cb249151dd42094cb1ba04d33f337283a03507ff354c393412b8174d787f72ab0220193f48eaef3fac4e8f5972c53cf969d45325052d276b7294f1d0c93c1608ccc0";
pub(crate) const RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC75AX7tq1IKL2i
YUu2C75StIaPG/0GK7V57WZnbj774rpussCM5U1DbNSJ0IQjJilejlNWJH9sveon
yZxrcwGMe7QDam7Go2hNW8x/0uPNMTUJyN8+VGRA1uYUb5sMvNy5i1y2/q4yYyCU
cANZpT3XFTZlIVLKpGblSnaYF98lChHLVDsdKRV/89lxxFu+6+xkgA+TCAIZnkOQ
OeZhAqszA15ip2CfvUx2t0/efIqn4eQhvm701Dp1mdL6u1VraaMiv+2/nBdWIYZS
zeOdfGxKcobvm4yC3kAiW3mXvFAmzZEkreSEGY/UNEkoq7tbKsuyzq5d8Vtd7tOI
T/csGWUpAgMBAAECggEACme7dpgEYuSBsvxHJnjiRH+Dm6mJwsWZJlxRsVzrP0UM
PMzoqazZsWgVoZ+y76Thgd9pKVI6Xc3rKaKqR0+OSIbBvnYulhDO2gjhS3tk+vQ0
ixsNFO00w5v7ECrpl+QeJ6bafrZeNINllp7Y6qYiZXbC5UkaBgeifKR56pyY0prS
u6/dK3jXG5TV9ypk9dQBmfrYwt8OqvY5IQftOyygvHJQ1l6w7FYoYsqxGQyjEjTY
yEXJY9LI4dRNXXT4TtG14bkxzyPUyEhs+jcSNaLmnI9jDDDQZ+M06SGfCfvHUKP1
DK8157f7JAXf3vuY0KBK9vYT/EIq1xyC7w6HmxWI4QKBgQDfDR440xYIvO5GZa6S
dyYKnlKXVWJ7QYYzw+A8NKlUtBrPljyQ+86GON16+xBi0lcg0pxgzWtsfiKIpx/s
8643Q52JXjK3OI/p3R0iNOIbY5nKk9IoY4BDhIYqiBkfvTt4BkoiZXbYBKCAkKy6
Lwe47desFsPTfUCDg2D9YOtsoQKBgQDXpUdToyI32xHPG67vwClypXYqgQnaHCjg
xvWMJzo6rEtd7kNy/69Y43sFnsicQ55a329i1Tth/sDfJaxw/a2HgjLHz+MJgeZX
XnjVvlS7m292cYn9jvSM5AyUPYHbjhSBRajeNOXKJBhu5DHE6RXZrexV2QabFndG
JfbfgtpjiQKBgQDVh0ZeWd1nIg7s/5yehEe7tJMWYtwzaKfj2GlK2ZMdDon4Hjf/
B8BPCBMnD0BBimF0f4rKtPxY0WuX7H4IpcMrDqS6g54Dfrdux4mDXKL0W2Y340k1
9wMsH6sc/ksm8k4C+epwgTfDVrKcQWPJnQpEhBSKnwR66xYekGACUI0v4QKBgC7p
bK/cMEh4ZtJoUlEju6COMDuk4LDLKXVksuwvaHJ1ItwnRhMRXmL28b9SQJAGAcAB
FWkpvAZgdjLVLkNSXFq7TzK6nchmsuZUzfKpuiMp+ECLCJrZa4fu4HGrQ8GwkfNh
ZRAZ79derNYK3Gzay/8T3/L5CH/ajk37Wk5bWAkJAoGAIfX+u+Ru7qAP6uCNHxM2
2yzCBFjfexgBFcfxWCOdDtztDmSyXFF/LLZvFXJ1h7tM2WKZ+Nrkh7q9Wy29C0DK
gemHsI0odioBUZf0Ckt8TPcGIvpL4mPcZIy7xg8KPqdl1P7oNq/BKOKyVJmX5Mae
XkMX3Ss4oI8GY//zCoFWz14=
-----END PRIVATE KEY-----
";
const RSA_KEY: &str = r#"{"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu+QF+7atSCi9omFLtgu+\nUrSGjxv9Biu1ee1mZ24+++K6brLAjOVNQ2zUidCEIyYpXo5TViR/bL3qJ8mca3MB\njHu0A2puxqNoTVvMf9LjzTE1CcjfPlRkQNbmFG+bDLzcuYtctv6uMmMglHADWaU9\n1xU2ZSFSyqRm5Up2mBffJQoRy1Q7HSkVf/PZccRbvuvsZIAPkwgCGZ5DkDnmYQKr\nMwNeYqdgn71MdrdP3nyKp+HkIb5u9NQ6dZnS+rtVa2mjIr/tv5wXViGGUs3jnXxs\nSnKG75uMgt5AIlt5l7xQJs2RJK3khBmP1DRJKKu7WyrLss6uXfFbXe7TiE/3LBll\nKQIDAQAB\n-----END PUBLIC KEY-----\n"}}"#;
const RSA_KEYID: &str = "3bd28f40d37d625aa2b179628c56162cf228665c8c61efbebecbbe8f572c5006";
const RSA_SIG: &str = "07c0a9b31aee2f454f399ae40c340a426d5b1b06aaa74dd29eefd32b07b35b35d0606e8d8195b1880ef1b5774a41e71eff0856c2c2470fb53c31bc8ee14ba45f11cbc8c2b2e6f00b8753f8f41b94e641aa3b8be509dad03f81e971544df9a6c2efd6310f380e7799ea8bc41b2cb9565b091424c7339621557bab3e4a7cede9a7f93ec5dca39ac68aae1c9787ccdbe3c76bf6c33b3dddbde63be4cfdede54572163f8451e20dab6c9f63abf003a7423cac6d17ed263f58ba094cc6f8fce8a8fc61227df7ec0bede5bfd47915f92ba922ddb27d99cfb1e27a03e5cb3e9a7b5b08056cc69350606ef9be895bcfb02d22d6e4facc69910c0c87442922a71cccf4545";
const RSA_SIG_MAX_SALT: &str = "735164389c14f377610f11e39c66ffd141f79b5d8364cc87a17c85a510b80bdd10e7ffc9a3da2a3b7930b8747d97070b05525b0fc474467d7981473b2473e6538f30a4fd0587b14f752105fed6406115af520c8d6bca9e8330ac116fb58bb15c513374ab4841e9ba4dd8fd9a7e2837e87545f693aaffabc230e606c66658708ddec7503a3fff72131f660265fa2308d78666c666450c6b282666d31096bf64c1ede9ba632ec1c10c6d532f5d871a055d6c19a5ef2529c4e114bcec0818901bbbcadf7d30bdd4ce5866643f72dac222057ff7ad4de2093384631f5b075cd949dd289abb1c72c79fa7519eaef454ce85584931aa7bfb7372086514cd8592daae38";

fn public(json: &str) -> PublicKey {
    serde_json::from_value(crate::cjson::parse(json.as_bytes()).unwrap()).unwrap()
}

#[test]
fn securesystemslib_signatures_verify() {
    for (key, keyid, sig) in [
        (ED_KEY, ED_KEYID, ED_SIG),
        (EC_KEY, EC_KEYID, EC_SIG),
        (RSA_KEY, RSA_KEYID, RSA_SIG),
        (RSA_KEY, RSA_KEYID, RSA_SIG_MAX_SALT),
    ] {
        let key = public(key);
        assert_eq!(key.compute_keyid().unwrap().as_str(), keyid);
        let verifier = key.decode().unwrap();
        let sig = hex::decode(sig).unwrap();
        assert!(verifier.verify(MSG, &sig), "{}", key.keytype);
        assert!(
            !verifier.verify(b"another message", &sig),
            "{}",
            key.keytype
        );
    }
}

#[test]
fn openssl_pkcs8_keys_load_with_securesystemslib_keyids() {
    for (pem, keyid) in [(ED_PEM, ED_KEYID), (EC_PEM, EC_KEYID), (RSA_PEM, RSA_KEYID)] {
        let key = PrivateKey::from_pkcs8_pem(pem).unwrap();
        assert_eq!(key.key_id().as_str(), keyid);
        let sig = key.sign(MSG).unwrap();
        assert!(key.public_key().decode().unwrap().verify(MSG, &sig));
        let again = PrivateKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
        assert_eq!(again.key_id(), key.key_id());
    }
}

#[test]
fn generated_keys_sign_and_verify() {
    for kind in [KeyKind::Ed25519, KeyKind::EcdsaP256] {
        let key = PrivateKey::generate(kind).unwrap();
        let sig = key.sign(MSG).unwrap();
        let verifier = key.public_key().decode().unwrap();
        assert!(verifier.verify(MSG, &sig));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!verifier.verify(MSG, &bad));
    }
}

#[test]
fn garbage_signatures_do_not_verify() {
    for key in [ED_KEY, EC_KEY, RSA_KEY] {
        let verifier = public(key).decode().unwrap();
        for sig in [&b""[..], b"\x00", &[0u8; 64], &[0xffu8; 256]] {
            assert!(!verifier.verify(MSG, sig));
        }
    }
}

#[test]
fn same_key_under_two_schemes_has_one_fingerprint() {
    let pss = public(RSA_KEY);
    let mut pkcs1 = pss.clone();
    pkcs1.scheme = "rsa-pkcs1v15-sha256".to_owned();
    let a: VerifyingKey = pss.decode().unwrap();
    let b = pkcs1.decode().unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
}

#[test]
fn unknown_key_types_are_carried_not_decoded() {
    let key = public(
        r#"{"keytype": "sphincs", "scheme": "sphincs-shake", "keyval": {"public": "00"}, "x": 1}"#,
    );
    assert!(matches!(
        key.decode(),
        Err(crate::Error::UnsupportedKey { .. })
    ));
    assert_eq!(key.extra.get("x"), Some(&serde_json::json!(1)));
}

#[test]
fn debug_does_not_print_the_secret() {
    let key = PrivateKey::from_pkcs8_pem(ED_PEM).unwrap();
    let debug = format!("{key:?}");
    assert!(debug.contains(ED_KEYID));
    assert!(!debug.contains("secret"));
}
