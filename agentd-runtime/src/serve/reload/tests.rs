//! Reload passes over real files: certificates swapped under a live TLS
//! server, broken material kept out, signed policy re-verified, and both
//! triggers (a `--reload-file` touch and a real SIGHUP).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
#[cfg(feature = "policy-file")]
use crate::policy::Decision;
use crate::serve::auth::env_secrets;

/// A component that counts its reloads and fails when told to.
struct Probe {
    name: &'static str,
    fail: bool,
    count: AtomicUsize,
}

impl Probe {
    fn new(name: &'static str, fail: bool) -> Arc<Probe> {
        Arc::new(Probe {
            name,
            fail,
            count: AtomicUsize::new(0),
        })
    }
    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Reloadable for Probe {
    fn component(&self) -> &'static str {
        self.name
    }
    fn event(&self) -> &'static str {
        "reload.probe"
    }
    fn reload(&self) -> Result<Value, String> {
        self.count.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            Err(format!("{} refused", self.name))
        } else {
            Ok(json!({}))
        }
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "agentd-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn config() -> ReloaderConfig {
    ReloaderConfig {
        #[cfg(feature = "tls")]
        tls: None,
        auth: &AuthDefs::EMPTY,
        secrets: env_secrets(),
        secret_defs: &[],
        #[cfg(feature = "policy-file")]
        policy: None,
    }
}

#[cfg(feature = "policy-file")]
fn env_allowed(r: &Reloader, key: &str) -> bool {
    match r.policy_mode() {
        PolicyMode::Override(p) => matches!(p.check_env(key), Decision::Allow),
        other => panic!("expected the --policy override, got {other:?}"),
    }
}

#[test]
fn without_a_policy_file_runs_use_the_baked_policy() {
    let r = Reloader::new(config()).expect("starts");
    assert!(matches!(r.policy_mode(), PolicyMode::Baked));
    assert_eq!(r.component_names(), vec!["auth"]);
}

#[test]
fn one_failing_component_does_not_stop_the_others() {
    let r = Reloader::new(config()).expect("starts");
    let (bad, good) = (Probe::new("bad", true), Probe::new("good", false));
    r.register(bad.clone());
    r.register(good.clone());
    let report = r.reload_all();
    assert_eq!(report.reloaded, vec!["auth", "good"]);
    assert_eq!(report.failed, vec![("bad", "bad refused".to_owned())]);
    assert!(!report.ok());
    assert_eq!((bad.count(), good.count()), (1, 1));
}

#[cfg(feature = "policy-file")]
#[test]
fn a_bad_policy_file_refuses_to_start_and_a_bad_reload_keeps_the_old_policy() {
    let dir = temp_dir("reload-policy");
    let path = dir.join("policy.toml");
    std::fs::write(&path, "[policy.env\n").expect("write");
    let mut c = config();
    c.policy = Some((path.clone(), None));
    let e = Reloader::new(c).expect_err("a broken file refuses to start");
    assert!(matches!(e, ReloadError::Policy(_)), "{e}");

    std::fs::write(&path, "[policy.env]\nread_keys = [\"A\"]\n").expect("write");
    let mut c = config();
    c.policy = Some((path.clone(), None));
    let r = Reloader::new(c).expect("starts");
    assert!(env_allowed(&r, "A"));
    std::fs::write(&path, "[policy.env]\nread_keys = 1\n").expect("write");
    let report = r.reload_all();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "policy");
    assert!(env_allowed(&r, "A"), "the old policy stays");
}

#[cfg(feature = "signing")]
#[test]
fn a_signed_policy_is_re_verified_on_every_reload() {
    use base64::Engine as _;
    use ed25519_dalek::{Signer, SigningKey};

    let signer = SigningKey::from_bytes(&[9; 32]);
    let public: &'static [u8; 32] = Box::leak(Box::new(signer.verifying_key().to_bytes()));
    let dir = temp_dir("reload-signed");
    let path = dir.join("policy.toml");
    let sig = dir.join("policy.toml.sig");
    let sign = |text: &str| {
        std::fs::write(&path, text).expect("write policy");
        let b64 = base64::engine::general_purpose::STANDARD;
        std::fs::write(&sig, b64.encode(signer.sign(text.as_bytes()).to_bytes())).expect("sig");
    };

    sign("[policy.env]\nread_keys = [\"A\"]\n");
    let mut c = config();
    c.policy = Some((path.clone(), Some(public)));
    let r = Reloader::new(c).expect("a signed policy starts");
    assert!(env_allowed(&r, "A"));

    // A correctly signed change is taken.
    sign("[policy.env]\nread_keys = [\"B\"]\n");
    assert!(r.reload_all().ok());
    assert!(env_allowed(&r, "B") && !env_allowed(&r, "A"));

    // Tampered after signing: refused, the signed policy stays.
    std::fs::write(&path, "[policy.env]\nread_keys = [\"*\"]\n").expect("tamper");
    let report = r.reload_all();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].1.contains("does not verify"), "{report:?}");
    assert!(!env_allowed(&r, "Z"));

    // Unsigned: refused as well.
    std::fs::remove_file(&sig).expect("remove sig");
    let report = r.reload_all();
    assert!(report.failed[0].1.contains("not signed"), "{report:?}");
    assert!(env_allowed(&r, "B") && !env_allowed(&r, "Z"));
}

#[cfg(feature = "tls")]
mod tls_reload {
    use super::*;
    use crate::serve::tls::ClientCertMode;
    use crate::serve::tls::test_support::{
        Ca, Leaf, client_config, connect, def_with_client, echo_server, roundtrip, server_leaf,
        tls_def,
    };

    fn reloader(def: &'static TlsDef, policy: Option<PathBuf>) -> Arc<Reloader> {
        let mut c = config();
        c.tls = Some(def);
        #[cfg(feature = "policy-file")]
        {
            c.policy = policy.map(|p| (p, None));
        }
        #[cfg(not(feature = "policy-file"))]
        let _ = policy;
        Arc::new(Reloader::new(c).expect("starts"))
    }

    async fn serve(r: &Arc<Reloader>) -> std::net::SocketAddr {
        let r = r.clone();
        let (addr, _accepted) = echo_server(move || {
            // A TLS server keeps TLS: the cell always holds a config.
            r.tls_config().expect("TLS is configured")
        })
        .await;
        addr
    }

    fn replace_leaf(def: &TlsDef, leaf: &Leaf) {
        std::fs::write(def.cert_file, &leaf.cert_pem).expect("write cert");
        std::fs::write(def.key_file, &leaf.key_pem).expect("write key");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn new_handshakes_see_the_new_certificate_and_old_connections_keep_working() {
        let dir = temp_dir("reload-tls");
        let ca = Ca::new("server ca");
        let first = ca.leaf("localhost", &["localhost"], None);
        let def = tls_def(&dir, &first, None);
        let r = reloader(def, None);
        let addr = serve(&r).await;
        let client = client_config(&ca.der(), None);

        let mut old = connect(addr, client.clone())
            .await
            .expect("first handshake");
        assert_eq!(server_leaf(&old), Some(first.der.clone()));

        let second = ca.leaf("localhost", &["localhost"], None);
        replace_leaf(def, &second);
        let report = r.reload_all();
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.reloaded, vec!["tls", "auth"]);

        let mut new = connect(addr, client).await.expect("second handshake");
        assert_eq!(server_leaf(&new), Some(second.der.clone()));
        assert_eq!(roundtrip(&mut new, "new").await.expect("echo"), "new");
        assert_eq!(
            roundtrip(&mut old, "still here")
                .await
                .expect("old connection"),
            "still here"
        );
        assert_eq!(server_leaf(&old), Some(first.der.clone()));
    }

    #[cfg(feature = "policy-file")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_certificate_keeps_the_old_config_and_the_policy_still_reloads() {
        let dir = temp_dir("reload-broken");
        let ca = Ca::new("server ca");
        let first = ca.leaf("localhost", &["localhost"], None);
        let def = tls_def(&dir, &first, None);
        let policy = dir.join("policy.toml");
        std::fs::write(&policy, "[policy.env]\nread_keys = [\"A\"]\n").expect("policy");
        let r = reloader(def, Some(policy.clone()));
        let addr = serve(&r).await;

        std::fs::write(def.cert_file, "-----BEGIN CERTIFICATE-----\nnot base64!\n")
            .expect("break cert");
        std::fs::write(&policy, "[policy.env]\nread_keys = [\"B\"]\n").expect("policy");
        let report = r.reload_all();
        assert_eq!(report.reloaded, vec!["auth", "policy"]);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, "tls");
        assert!(
            report.failed[0].1.starts_with("tls: parse cert_file"),
            "{report:?}"
        );

        let mut tls = connect(addr, client_config(&ca.der(), None))
            .await
            .expect("the old config still serves");
        assert_eq!(server_leaf(&tls), Some(first.der.clone()));
        assert_eq!(roundtrip(&mut tls, "ok").await.expect("echo"), "ok");
        assert!(
            env_allowed(&r, "B"),
            "the policy swapped although TLS failed"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reloaded_client_ca_is_enforced_on_new_handshakes() {
        let (def, server_ca, client_ca, _leaf, _dir) = def_with_client(ClientCertMode::Required);
        let r = reloader(def, None);
        let addr = serve(&r).await;
        let client = client_ca.leaf("c", &[], None);
        let mut tls = connect(addr, client_config(&server_ca.der(), Some(&client)))
            .await
            .expect("trusted client");
        assert_eq!(roundtrip(&mut tls, "1").await.expect("echo"), "1");

        // Rotate the client CA: the old client is no longer trusted.
        let new_ca = Ca::new("new client ca");
        let ca_file = def
            .client_auth
            .as_ref()
            .map(|c| c.ca_file)
            .expect("client auth");
        std::fs::write(ca_file, new_ca.pem()).expect("rotate ca");
        assert!(r.reload_all().ok());
        let refused = match connect(addr, client_config(&server_ca.der(), Some(&client))).await {
            Err(_) => true,
            Ok(mut t) => roundtrip(&mut t, "2").await.is_err(),
        };
        assert!(
            refused,
            "a client of the old CA is refused after the reload"
        );
        assert_eq!(roundtrip(&mut tls, "3").await.expect("old connection"), "3");
    }
}

#[cfg(feature = "auth-oidc")]
#[test]
fn a_jwks_file_reload_swaps_keys_and_a_broken_one_keeps_them() {
    use crate::serve::auth::{AuthRef, AuthRequest, JwksSource, OidcDef, authorize};
    use base64::Engine as _;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    fn key(kid: &str) -> (jsonwebtoken::EncodingKey, Value) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let p = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64.encode(&p[1..33]), "y": b64.encode(&p[33..65])});
        (jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
    }

    let dir = temp_dir("reload-jwks");
    let path = dir.join("jwks.json");
    let (k1, j1) = key("one");
    let (k2, j2) = key("two");
    std::fs::write(&path, json!({"keys": [j1]}).to_string()).expect("jwks");
    let defs: &'static AuthDefs = Box::leak(Box::new(AuthDefs {
        oidc: Box::leak(Box::new([OidcDef {
            name: "idp",
            issuer: "iss",
            audience: &[],
            jwks: JwksSource::File(Box::leak(path.display().to_string().into_boxed_str())),
            subject_allowlist: &[],
            clock_skew_secs: 60,
            algorithms: &["ES256"],
        }])),
        ..AuthDefs::EMPTY
    }));
    let mut c = config();
    c.auth = defs;
    let r = Reloader::new(c).expect("starts");
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 600;
    let accepts = |key: &jsonwebtoken::EncodingKey, kid: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        let t =
            jsonwebtoken::encode(&header, &json!({"iss": "iss", "exp": exp}), key).expect("token");
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {t}")).expect("header"),
        );
        let req = AuthRequest {
            headers: &h,
            body: b"",
            peer: None,
            now: std::time::SystemTime::now(),
        };
        authorize(&r.auth(), AuthRef::Oidc("idp"), &req).is_ok()
    };
    assert!(accepts(&k1, "one") && !accepts(&k2, "two"));

    std::fs::write(&path, json!({"keys": [j2]}).to_string()).expect("jwks");
    assert!(r.reload_all().ok());
    assert!(!accepts(&k1, "one") && accepts(&k2, "two"), "keys rotated");

    std::fs::write(&path, "{\"keys\": [").expect("break jwks");
    let report = r.reload_all();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "auth");
    assert!(accepts(&k2, "two"), "the prepared keys stay");
}

/// Wait (bounded) until `probe` has reloaded at least `n` times.
async fn reloaded(probe: &Probe, n: usize) -> bool {
    for _ in 0..200 {
        if probe.count() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touching_the_reload_file_triggers_a_pass() {
    let dir = temp_dir("reload-file");
    let file = dir.join("reload-me");
    assert!(!file.exists());
    let r = Arc::new(Reloader::new(config()).expect("starts"));
    let probe = Probe::new("probe", false);
    r.register(probe.clone());
    let triggers = spawn_reload_triggers(r.clone(), Some(file.clone())).expect("triggers");
    assert!(file.exists(), "the reload file is created when missing");

    std::fs::write(&file, "1").expect("touch");
    assert!(
        reloaded(&probe, 1).await,
        "a changed reload file triggers a pass"
    );

    triggers.request();
    assert!(
        reloaded(&probe, 2).await,
        "an explicit request triggers a pass"
    );
    drop(triggers);
}

#[test]
fn an_uncreatable_reload_file_refuses_to_start() {
    let rt = crate::serve::test_runtime();
    rt.block_on(async {
        let r = Arc::new(Reloader::new(config()).expect("starts"));
        let bad = PathBuf::from("/nonexistent-dir-for-agentd/reload");
        let e = spawn_reload_triggers(r, Some(bad)).expect_err("cannot create");
        assert!(e.to_string().contains("--reload-file"), "{e}");
    });
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_triggers_a_pass() {
    let r = Arc::new(Reloader::new(config()).expect("starts"));
    let probe = Probe::new("probe", false);
    r.register(probe.clone());
    // The handler is installed before this returns, so the signal below is
    // delivered to it rather than terminating the test process.
    let _triggers = spawn_reload_triggers(r, None).expect("triggers");
    // SAFETY: kill(2) on our own pid with a signal whose handler is installed.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    assert_eq!(rc, 0, "kill(SIGHUP) failed");
    assert!(reloaded(&probe, 1).await, "SIGHUP triggers a pass");
}
