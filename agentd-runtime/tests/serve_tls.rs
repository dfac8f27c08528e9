//! Route auth over real HTTPS: the serve-mode server (hyper on tokio-rustls)
//! with `[server.tls]` requiring client certificates, a bearer route and an
//! mTLS route, driven by a blocking rustls client on 127.0.0.1. Certificates
//! are made by rcgen here; a reload swaps the server certificate under a live
//! keep-alive connection.

#[allow(dead_code)]
#[path = "../../tests/support/scratch.rs"]
mod support_scratch;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentd_runtime::serde_json::{Value, json};
use agentd_runtime::serve::auth::{AuthDefs, BearerDef};
use agentd_runtime::serve::reload::{Reloader, ReloaderConfig};
use agentd_runtime::serve::tls::{ClientAuthDef, ClientCertMode, TlsDef};
use agentd_runtime::serve::{Hooks, Running, ServeConfig, start};
use agentd_runtime::workflow::serve::{AuthRef, RouteDef, ServeDef};
use agentd_runtime::{Cx, Error, GraphId, NodeIdx, Step};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

// ------------------------------------------------------------------ workflow

/// `who`: one `rust` node that returns the request's principal. Routes:
/// `POST /bearer` (auth `bearer:ops`), `POST /mtls` (auth `mtls`),
/// `POST /open` (no auth).
struct Who;

static G0: agentd_runtime::GraphMeta = agentd_runtime::GraphMeta {
    name: "who",
    starts: &[agentd_runtime::StartMeta {
        name: "who",
        source: agentd_runtime::Source::Http,
        entry: Some(NodeIdx(0)),
        roots: 1,
    }],
    nodes: &[agentd_runtime::NodeMeta {
        id: "whoami",
        kind: agentd_runtime::Kind::Rust,
        slot: agentd_runtime::Slot::Node(0),
        retry: None,
    }],
    out_edges: &[&[]],
    edge_count: 0,
};

static INFO: agentd_runtime::BuildInfo = agentd_runtime::BuildInfo {
    workflow: "who",
    compiler_version: "test",
    sources: &[],
    capabilities: &["serve", "tls"],
    program_hash: "00",
    signer: None,
    policy_key: None,
};

const fn route(path: &'static str, auth: AuthRef) -> RouteDef {
    RouteDef {
        method: "POST",
        path,
        start: "who",
        auth,
        rate_limit: None,
        idempotency: None,
        input_schema: None,
        inline: true,
    }
}

static ROUTES: [RouteDef; 3] = [
    route("/bearer", AuthRef::Bearer("ops")),
    route("/mtls", AuthRef::Mtls),
    route("/open", AuthRef::None),
];

static SERVE: ServeDef = ServeDef {
    routes: &ROUTES,
    triggers: &[],
};

static AUTH: AuthDefs = AuthDefs {
    bearer: &[BearerDef {
        name: "ops",
        tokens_secret: None,
        tokens: &["t0ken"],
    }],
    ..AuthDefs::EMPTY
};

impl agentd_runtime::Workflow for Who {
    const GRAPHS: &'static [agentd_runtime::GraphMeta] = std::slice::from_ref(&G0);
    const INFO: &'static agentd_runtime::BuildInfo = &INFO;
    const SERVE: &'static ServeDef = &SERVE;
    const AUTH: &'static AuthDefs = &AUTH;

    fn exec(&self, _g: GraphId, node: NodeIdx, cx: &mut Cx<'_>) -> Result<Step, Error> {
        match node.0 {
            0 => Ok(Step::value(
                json!({ "principal": cx.raw_input().get("principal").cloned() }),
            )),
            _ => agentd_runtime::nodes::unknown_node(GraphId(0), node),
        }
    }
}

// ------------------------------------------------------------------ PKI

struct Ca(CertifiedIssuer<'static, KeyPair>);

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca"))
    }

    fn leaf(&self, cn: &str, sans: &[&str]) -> Leaf {
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.0).expect("leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// A fresh directory under `target/tmp` (the shared `Scratch` of the workspace's
/// test support), kept after the test: the served configuration holds its path
/// for the rest of the process. The next run empties it.
fn scratch(name: &str) -> PathBuf {
    support_scratch::scratch(name).keep()
}

fn leak_path(dir: &Path, name: &str) -> &'static str {
    Box::leak(dir.join(name).display().to_string().into_boxed_str())
}

fn write_leaf(def: &TlsDef, leaf: &Leaf) {
    std::fs::write(def.cert_file, &leaf.cert_pem).expect("write cert");
    std::fs::write(def.key_file, &leaf.key_pem).expect("write key");
}

// ------------------------------------------------------------------ client

fn client_config(server_ca: &Ca, client: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_ca.0.der().clone()).expect("root");
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots);
    Arc::new(match client {
        None => builder.with_no_client_auth(),
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key"),
            )
            .expect("client cert"),
    })
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(addr).expect("connect");
    // Generous, only so that a bug cannot hang the test.
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client connection");
    rustls::StreamOwned::new(conn, tcp)
}

struct Reply {
    status: u16,
    body: Value,
}

/// One keep-alive request; `None` when the server closed or the TLS session failed.
fn post(tls: &mut Tls, path: &str, headers: &[(&str, &str)]) -> Option<Reply> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n{}");
    tls.write_all(req.as_bytes()).ok()?;
    tls.flush().ok()?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = resp.parse(&buf) {
            let status = resp.code?;
            let len: usize = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())?;
            while buf.len() < head_len + len {
                let n = tls.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = agentd_runtime::serde_json::from_slice(&buf[head_len..head_len + len])
                .unwrap_or(Value::Null);
            return Some(Reply { status, body });
        }
        let n = tls.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn server_leaf(tls: &Tls) -> Option<CertificateDer<'static>> {
    tls.conn.peer_certificates()?.first().cloned()
}

// ------------------------------------------------------------------ server

struct Fixture {
    running: Option<Running>,
    addr: SocketAddr,
    reloader: Arc<Reloader>,
    def: &'static TlsDef,
    server_ca: Ca,
    client_ca: Ca,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
            let _ = r.wait();
        }
    }
}

fn serve_who(tag: &str) -> Fixture {
    let dir = scratch(tag);
    let server_ca = Ca::new("server ca");
    let client_ca = Ca::new("client ca");
    let ca_file = leak_path(&dir, "clients-ca.pem");
    std::fs::write(ca_file, client_ca.0.pem()).expect("write ca");
    let def: &'static TlsDef = Box::leak(Box::new(TlsDef {
        cert_file: leak_path(&dir, "server.pem"),
        key_file: leak_path(&dir, "server.key"),
        client_auth: Some(ClientAuthDef {
            mode: ClientCertMode::Required,
            ca_file,
        }),
    }));
    write_leaf(def, &server_ca.leaf("localhost", &["localhost"]));

    // The baked auth of `Who`; TLS from files made for this test.
    let mut reload_config =
        ReloaderConfig::for_workflow(<Who as agentd_runtime::Workflow>::DEF, None);
    reload_config.tls = Some(def);
    let reloader = Arc::new(Reloader::new(reload_config).expect("reloadable state"));
    // Other hooks exist only with other features.
    #[allow(clippy::needless_update)]
    let hooks = Hooks {
        reloader: Some(reloader.clone()),
        ..Hooks::default()
    };
    let config = ServeConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        handle_signals: false,
        hooks,
        ..ServeConfig::default()
    };
    let running = start(&Who, config).unwrap_or_else(|e| panic!("serve: {e}"));
    let addr = running.local_addr().expect("a listener");
    Fixture {
        running: Some(running),
        addr,
        reloader,
        def,
        server_ca,
        client_ca,
    }
}

fn fingerprint(der: &CertificateDer<'_>) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(der.as_ref());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

// ------------------------------------------------------------------ tests

#[test]
fn mtls_route_accepts_the_certified_client_and_injects_its_identity() {
    let f = serve_who("mtls");
    let client = f.client_ca.leaf("robot-7", &["Robot.Example"]);
    let mut tls = connect(f.addr, client_config(&f.server_ca, Some(&client)));
    let reply = post(&mut tls, "/mtls", &[]).expect("a response");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["final_value"]["principal"],
        json!({
            "kind": "mtls",
            "name": fingerprint(&client.der),
            "cn": "robot-7",
            "sans": ["robot.example"],
        })
    );
}

#[test]
fn bearer_route_over_mtls_checks_the_token_and_keeps_the_certificate_details() {
    let f = serve_who("bearer");
    let client = f.client_ca.leaf("robot-8", &["r8.example"]);
    let mut tls = connect(f.addr, client_config(&f.server_ca, Some(&client)));

    let reply = post(&mut tls, "/bearer", &[]).expect("a response");
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.body,
        json!({"error": "unauthorized", "detail": "missing Authorization header"})
    );
    let reply = post(&mut tls, "/bearer", &[("Authorization", "Bearer nope")]).expect("reply");
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["detail"], "bearer token does not match");

    let reply = post(&mut tls, "/bearer", &[("Authorization", "Bearer t0ken")]).expect("reply");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["final_value"]["principal"],
        json!({"kind": "bearer", "name": "ops", "cn": "robot-8", "sans": ["r8.example"]})
    );
}

#[test]
fn a_client_without_a_certificate_never_reaches_http() {
    let f = serve_who("nocert");
    let mut tls = connect(f.addr, client_config(&f.server_ca, None));
    assert!(
        post(&mut tls, "/open", &[]).is_none(),
        "required client auth: no certificate, no HTTP"
    );
    // The server is still serving certified clients.
    let client = f.client_ca.leaf("ok", &[]);
    let mut tls = connect(f.addr, client_config(&f.server_ca, Some(&client)));
    assert_eq!(post(&mut tls, "/open", &[]).map(|r| r.status), Some(200));
}

#[test]
fn a_reload_swaps_the_certificate_for_new_connections_only() {
    let f = serve_who("reload");
    let client = f.client_ca.leaf("c", &[]);
    let config = client_config(&f.server_ca, Some(&client));

    let mut old = connect(f.addr, config.clone());
    assert_eq!(post(&mut old, "/open", &[]).map(|r| r.status), Some(200));
    let first = server_leaf(&old).expect("server certificate");

    let second = f.server_ca.leaf("localhost", &["localhost"]);
    write_leaf(f.def, &second);
    let report = f.reloader.reload_all();
    assert!(report.ok(), "{report:?}");

    let mut new = connect(f.addr, config);
    assert_eq!(post(&mut new, "/open", &[]).map(|r| r.status), Some(200));
    assert_eq!(server_leaf(&new), Some(second.der.clone()));
    assert_ne!(server_leaf(&new), Some(first.clone()));

    // The keep-alive connection made before the reload keeps its session.
    assert_eq!(post(&mut old, "/open", &[]).map(|r| r.status), Some(200));
    assert_eq!(server_leaf(&old), Some(first));
}
