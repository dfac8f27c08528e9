//! Real handshakes on 127.0.0.1: a tokio-rustls server built from
//! [`server_config`] and a rustls client, certificates made by rcgen here.

use sha2::{Digest, Sha256};

use super::test_support::*;
use super::*;

fn fingerprint(der: &CertificateDer<'_>) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der.as_ref())))
}

#[tokio::test]
async fn server_auth_handshake_presents_the_configured_certificate() {
    let dir = temp_dir("tls");
    let ca = Ca::new("server ca");
    let leaf = ca.leaf("localhost", &["localhost"], None);
    let config = server_config(tls_def(&dir, &leaf, None)).expect("config builds");
    let (addr, mut accepted) = echo_server(move || config.clone()).await;

    let mut tls = connect(addr, client_config(&ca.der(), None))
        .await
        .expect("handshake");
    assert_eq!(roundtrip(&mut tls, "ping").await.expect("echo"), "ping");
    assert_eq!(server_leaf(&tls), Some(leaf.der.clone()));
    match next_accept(&mut accepted).await {
        Accepted::Handshake(peer) => assert_eq!(peer, None, "no client certificate"),
        Accepted::Failed(e) => panic!("server handshake failed: {e}"),
    }
}

#[tokio::test]
async fn rsa_pkcs1_and_ec_sec1_key_files_are_accepted() {
    // The certificates are made from the PKCS#8 form of each fixture key; the
    // server reads the key in the legacy encoding.
    for (pkcs8, legacy, what) in [
        (RSA_PKCS8, RSA_PKCS1, "RSA PKCS#1"),
        (EC_PKCS8, EC_SEC1, "EC SEC1"),
    ] {
        let dir = temp_dir("tls-keys");
        let ca = Ca::new("server ca");
        let mut leaf = ca.leaf("localhost", &["localhost"], Some(pkcs8));
        leaf.key_pem = legacy.to_owned();
        let config =
            server_config(tls_def(&dir, &leaf, None)).unwrap_or_else(|e| panic!("{what}: {e}"));
        let (addr, _accepted) = echo_server(move || config.clone()).await;
        let mut tls = connect(addr, client_config(&ca.der(), None))
            .await
            .unwrap_or_else(|e| panic!("{what} handshake: {e}"));
        assert_eq!(roundtrip(&mut tls, what).await.expect("echo"), what);
    }
}

#[tokio::test]
async fn required_client_auth_refuses_a_client_without_a_certificate() {
    let (def, server_ca, _client_ca, _leaf, _dir) = def_with_client(ClientCertMode::Required);
    let config = server_config(def).expect("config builds");
    let (addr, mut accepted) = echo_server(move || config.clone()).await;

    // With TLS 1.3 the client may finish its side before the server refuses;
    // either way no application data gets through.
    let refused = match connect(addr, client_config(&server_ca.der(), None)).await {
        Err(_) => true,
        Ok(mut tls) => roundtrip(&mut tls, "let me in").await.is_err(),
    };
    assert!(
        refused,
        "a client without a certificate must not get an echo"
    );
    match next_accept(&mut accepted).await {
        Accepted::Failed(e) => assert!(
            e.to_lowercase().contains("certificate"),
            "the server names the missing certificate: {e}"
        ),
        Accepted::Handshake(p) => panic!("handshake accepted without a client cert: {p:?}"),
    }
}

#[tokio::test]
async fn required_client_auth_refuses_a_certificate_from_another_ca() {
    let (def, server_ca, _client_ca, _leaf, _dir) = def_with_client(ClientCertMode::Required);
    let config = server_config(def).expect("config builds");
    let (addr, mut accepted) = echo_server(move || config.clone()).await;
    let stranger = Ca::new("someone else").leaf("intruder", &["intruder.example"], None);
    let refused = match connect(addr, client_config(&server_ca.der(), Some(&stranger))).await {
        Err(_) => true,
        Ok(mut tls) => roundtrip(&mut tls, "x").await.is_err(),
    };
    assert!(refused);
    assert!(matches!(
        next_accept(&mut accepted).await,
        Accepted::Failed(_)
    ));
}

#[tokio::test]
async fn a_valid_client_certificate_yields_fingerprint_cn_and_lowercased_sans() {
    let (def, server_ca, client_ca, _leaf, _dir) = def_with_client(ClientCertMode::Required);
    let config = server_config(def).expect("config builds");
    let (addr, mut accepted) = echo_server(move || config.clone()).await;
    let client = client_ca.leaf("client-one", &["Client.Example", "b.example"], None);

    let mut tls = connect(addr, client_config(&server_ca.der(), Some(&client)))
        .await
        .expect("mutual handshake");
    assert_eq!(roundtrip(&mut tls, "hi").await.expect("echo"), "hi");
    match next_accept(&mut accepted).await {
        Accepted::Handshake(Some(peer)) => {
            assert_eq!(peer.fingerprint, fingerprint(&client.der));
            assert_eq!(peer.cn.as_deref(), Some("client-one"));
            assert_eq!(peer.sans, vec!["client.example", "b.example"]);
        }
        other => panic!("expected a peer identity, got {other:?}"),
    }
}

#[tokio::test]
async fn optional_client_auth_accepts_both_and_names_only_the_certified_peer() {
    let (def, server_ca, client_ca, _leaf, _dir) = def_with_client(ClientCertMode::Optional);
    let config = server_config(def).expect("config builds");
    let (addr, mut accepted) = echo_server(move || config.clone()).await;

    let mut anon = connect(addr, client_config(&server_ca.der(), None))
        .await
        .expect("handshake without a certificate");
    assert_eq!(roundtrip(&mut anon, "a").await.expect("echo"), "a");
    assert!(matches!(
        next_accept(&mut accepted).await,
        Accepted::Handshake(None)
    ));

    let client = client_ca.leaf("c", &[], None);
    let mut mutual = connect(addr, client_config(&server_ca.der(), Some(&client)))
        .await
        .expect("handshake with a certificate");
    assert_eq!(roundtrip(&mut mutual, "b").await.expect("echo"), "b");
    match next_accept(&mut accepted).await {
        Accepted::Handshake(Some(peer)) => assert_eq!(peer.fingerprint, fingerprint(&client.der)),
        other => panic!("expected a peer identity, got {other:?}"),
    }
}

fn def(cert_file: &'static str, key_file: &'static str, ca: Option<&'static str>) -> TlsDef {
    TlsDef {
        cert_file,
        key_file,
        client_auth: ca.map(|ca_file| ClientAuthDef {
            mode: ClientCertMode::Required,
            ca_file,
        }),
    }
}

fn error(def: &TlsDef) -> String {
    match server_config(def) {
        Ok(_) => panic!("expected a TLS error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn broken_files_give_the_spec_messages() {
    let dir = temp_dir("tls-errors");
    let ca = Ca::new("ca");
    let leaf = ca.leaf("localhost", &["localhost"], None);
    let cert = write(&dir, "cert.pem", &leaf.cert_pem);
    let key = write(&dir, "key.pem", &leaf.key_pem);
    let empty = write(&dir, "empty.pem", "no pem here\n");
    let missing = leak(dir.join("missing.pem").display().to_string());

    let e = error(&def(missing, key, None));
    assert!(
        e.starts_with("tls: open cert_file ") && e.contains("missing.pem"),
        "{e}"
    );
    let e = error(&def(empty, key, None));
    assert!(
        e.starts_with("tls: cert_file ") && e.ends_with("contains no certificates"),
        "{e}"
    );
    let e = error(&def(cert, missing, None));
    assert!(e.starts_with("tls: open key_file "), "{e}");
    let e = error(&def(cert, cert, None));
    assert!(e.ends_with("has no recognised private key"), "{e}");
    let e = error(&def(cert, key, Some(empty)));
    assert!(
        e.starts_with("tls: ca_file ") && e.ends_with("contains no certificates"),
        "{e}"
    );
    let e = error(&def(cert, key, Some(missing)));
    assert!(e.starts_with("tls: open ca_file "), "{e}");

    let fresh = rcgen::KeyPair::generate().expect("key").serialize_pem();
    let other_key = write(&dir, "other.key", &fresh);
    let e = error(&def(cert, other_key, None));
    assert!(
        e.starts_with("tls: with_single_cert: "),
        "a key that does not match: {e}"
    );

    let truncated = write(
        &dir,
        "truncated.pem",
        &leaf.cert_pem[..leaf.cert_pem.len() / 2],
    );
    let e = error(&def(truncated, key, None));
    assert!(e.starts_with("tls: parse cert_file "), "{e}");

    let big = dir.join("big.pem");
    let size = usize::try_from(MAX_PEM_BYTES).unwrap_or(usize::MAX) + 1;
    std::fs::write(&big, vec![b'a'; size]).expect("write big");
    let e = error(&def(leak(big.display().to_string()), key, None));
    assert!(e.contains("the limit is"), "{e}");
}

#[test]
fn peer_identity_of_garbage_keeps_the_fingerprint_only() {
    let der = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
    let peer = peer_identity(&der);
    assert_eq!(peer.fingerprint, fingerprint(&der));
    assert_eq!(peer.cn, None);
    assert!(peer.sans.is_empty());
}
