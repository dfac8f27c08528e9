//! End to end: a workflow with `[logging.otel]`, built by the real `agentd`
//! (so the binary carries the `otel` feature), runs once and exports its
//! spans over OTLP/gRPC to a collector in this test (tonic with the
//! opentelemetry-proto service, on 127.0.0.1). The spans arrive before the
//! process exits, as one trace: `workflow.run` with a `node.execute` child
//! per node, under the configured service name and resource attributes.
//! Over `https://` too: a collector with a certificate from an in-test CA,
//! trusted through `AGENTD_HTTP_CA_FILE` (runtime feature `otel-tls`).
#![cfg(target_os = "linux")]

mod support;

use support::{scratch, tls};

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;

/// Every export request the collector received.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(AnyValue::StringValue(s)) => Some(s.clone()),
            _ => None,
        }
    })
}

/// A collector on 127.0.0.1 (TLS with `tls`), on its own runtime: the port,
/// what it receives, and the runtime that keeps it alive.
fn start_collector(
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> (u16, Collector, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let port = std_listener.local_addr().expect("addr").port();
    let collector = Collector::default();
    let service = TraceServiceServer::new(collector.clone());
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            server = server.tls_config(tls).expect("server TLS");
        }
        let _ = server
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    (port, collector, runtime)
}

/// Build the `traced` workflow exporting to `endpoint` in `dir`, with
/// `extra` lines in its `[logging.otel]`.
fn build_traced(dir: &Path, endpoint: &str, extra: &str) -> std::path::PathBuf {
    let workflow = format!(
        r#"name = "traced"

[policy]

[logging.otel]
endpoint = "{endpoint}"
service_name = "otel-e2e"
resource_attrs = {{ deployment = "test" }}
{extra}
[[start_nodes]]
name = "main"
source = "manual"
entry_node = "greet"

[[nodes]]
id = "greet"
type = "template_render"
template = "hello, {{{{who}}}}"
input_from = "trigger"

[[nodes]]
id = "done"
type = "terminate"

[[edges]]
from = "greet"
to = "done"
"#
    );
    std::fs::write(dir.join("traced.toml"), workflow).expect("write the workflow");
    let exe = dir.join("traced");
    support::agentd_build(dir, "traced.toml", &exe, &[]);
    exe
}

#[test]
fn a_run_exports_its_spans_as_one_trace_over_otlp_grpc() {
    let (port, collector, _runtime) = start_collector(None);
    let dir = scratch("grpc");
    let exe = build_traced(&dir, &format!("http://127.0.0.1:{port}"), "");
    assert_exported(&exe, &collector, &[]);
}

/// `protocol = "grpc"` (the one protocol) exports to the gRPC collector, and
/// `sample_ratio = 0.5` keeps a trace exactly when the low 8 bytes of its id,
/// as a fraction of 2^64, are below 0.5: of 24 runs some are exported and some
/// not (all or none: a chance of 2 in 2^24), and every exported id obeys the rule.
#[test]
fn sample_ratio_keeps_the_traces_whose_id_falls_below_it_over_grpc() {
    let (port, collector, _runtime) = start_collector(None);
    let dir = scratch("sampled");
    let exe = build_traced(
        &dir,
        &format!("http://127.0.0.1:{port}"),
        "protocol = \"grpc\"\nsample_ratio = 0.5\n",
    );
    let runs = 24;
    for _ in 0..runs {
        let run = Command::new(&exe)
            .args(["--input", r#"{"who": "otel"}"#])
            .output()
            .expect("the binary runs");
        assert_eq!(
            run.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let requests = collector
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let runs_kept: Vec<Vec<u8>> = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .filter(|s| s.name == "workflow.run")
        .map(|s| s.trace_id.clone())
        .collect();
    assert!(
        !runs_kept.is_empty() && runs_kept.len() < runs,
        "sample_ratio = 0.5 kept {} of {runs} traces",
        runs_kept.len()
    );
    for id in &runs_kept {
        assert_eq!(id.len(), 16);
        assert!(
            id[8] < 0x80,
            "trace {id:02x?} kept although its low half is not below 0.5 of 2^64"
        );
    }
}

/// An `https://` collector whose certificate comes from a private CA: the
/// binary trusts it only through `AGENTD_HTTP_CA_FILE`; a bundle without a
/// certificate stops the binary at start (exit 5), naming the variable.
#[test]
fn spans_reach_an_https_collector_trusted_through_agentd_http_ca_file() {
    let ca = tls::Ca::new("agentd otel test CA");
    let leaf = ca.leaf("localhost", &["localhost", "127.0.0.1"]);
    let identity = tonic::transport::Identity::from_pem(&leaf.cert_pem, &leaf.key_pem);
    let (port, collector, _runtime) = start_collector(Some(
        tonic::transport::ServerTlsConfig::new().identity(identity),
    ));
    let dir = scratch("tls");
    let exe = build_traced(&dir, &format!("https://127.0.0.1:{port}"), "");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write the CA");
    std::fs::write(dir.join("empty.pem"), "no certificates\n").expect("write");

    let refused = Command::new(&exe)
        .args(["--input", r#"{"who": "otel"}"#])
        .env("AGENTD_HTTP_CA_FILE", dir.join("empty.pem"))
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("AGENTD_HTTP_CA_FILE"), "{stderr}");
    assert!(collector.0.lock().map(|r| r.is_empty()).unwrap_or(false));

    let ca_file = dir.join("ca.pem");
    assert_exported(
        &exe,
        &collector,
        &[("AGENTD_HTTP_CA_FILE", ca_file.as_path())],
    );
}

/// Run `exe` once with `env` and check the collector got one trace of it.
fn assert_exported(exe: &Path, collector: &Collector, env: &[(&str, &Path)]) {
    let run = Command::new(exe)
        .args(["--input", r#"{"who": "otel"}"#])
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );

    // The binary flushed before it exited: everything is here already.
    let requests = collector
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let resource_spans: Vec<_> = requests.iter().flat_map(|r| &r.resource_spans).collect();
    assert!(!resource_spans.is_empty(), "no spans were exported");
    let resource = resource_spans[0].resource.as_ref().expect("a resource");
    assert_eq!(
        text(&resource.attributes, "service.name").as_deref(),
        Some("otel-e2e")
    );
    assert_eq!(
        text(&resource.attributes, "deployment").as_deref(),
        Some("test")
    );
    let spans: Vec<_> = resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    let run_span = spans
        .iter()
        .find(|s| s.name == "workflow.run")
        .unwrap_or_else(|| {
            panic!(
                "no workflow.run among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        text(&run_span.attributes, "workflow_id").as_deref(),
        Some("traced")
    );
    assert!(run_span.parent_span_id.is_empty(), "the run is the root");
    let nodes: Vec<_> = spans.iter().filter(|s| s.name == "node.execute").collect();
    let ids: Vec<String> = nodes
        .iter()
        .filter_map(|s| text(&s.attributes, "node_id"))
        .collect();
    assert_eq!(ids, ["greet", "done"], "one span per node, in order");
    for node in &nodes {
        assert_eq!(node.trace_id, run_span.trace_id, "one trace");
        assert_eq!(node.parent_span_id, run_span.span_id, "children of the run");
        assert!(node.start_time_unix_nano >= run_span.start_time_unix_nano);
        assert!(node.end_time_unix_nano <= run_span.end_time_unix_nano);
    }
    assert_eq!(run_span.trace_id.len(), 16);
    assert!(run_span.trace_id.iter().any(|b| *b != 0));
}
