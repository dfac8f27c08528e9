//! Two workflows compiled into this program with `agentd!`, called from `main`.
//!
//! - `workflows/data-pipeline.toml` (shipped with agentd): plain dialect 1.
//! - `tests/embedded-example/workflows/triage.toml`: a custom Rust node whose
//!   handler is [`triage::classify`], statically dispatched like any node.
//!
//! Prints one line per run, `<workflow>: <outcome JSON>`; `tests/run.rs` runs
//! the binary and checks them.

use std::process::ExitCode;

use agentd_runtime::serde_json::json;
use agentd_runtime::{Outcome, agentd};

// Paths are relative to this crate's Cargo.toml.
agentd!("../../workflows/data-pipeline.toml");
agentd!(
    "workflows/triage.toml",
    handlers = { classify = triage::classify }
);

/// The Rust side of `triage.toml`.
mod triage {
    use agentd_runtime::Cx;
    use agentd_runtime::nodes::rust::{NodeError, NodeOutput};
    use agentd_runtime::serde_json::{Value, json};

    /// Handler `classify`: `{ "title", "body" }` → `{ "queue", "priority" }`,
    /// on branch `urgent` or `routine`.
    pub fn classify(_cx: &Cx<'_>, ticket: &Value) -> Result<NodeOutput, NodeError> {
        let title = ticket
            .get("title")
            .and_then(Value::as_str)
            .ok_or_else(|| NodeError::new("ticket has no string `title`"))?;
        let lower = title.to_lowercase();
        let queue = if lower.contains("invoice") || lower.contains("refund") {
            "billing"
        } else {
            "support"
        };
        let urgent = lower.contains("down") || lower.contains("outage");
        let priority = if urgent { 1 } else { 3 };
        let label = if urgent { "urgent" } else { "routine" };
        Ok(NodeOutput::branch(
            json!({ "queue": queue, "priority": priority }),
            label,
        ))
    }
}

/// Print `<workflow>: <outcome JSON>` (or `<workflow>: error: <message>`).
fn report(workflow: &str, outcome: &Result<Outcome, agentd_runtime::Error>) {
    match outcome {
        Ok(outcome) => match agentd_runtime::serde_json::to_string(outcome) {
            Ok(text) => println!("{workflow}: {text}"),
            Err(err) => println!("{workflow}: unprintable outcome: {err}"),
        },
        Err(err) => println!("{workflow}: error: {err}"),
    }
}

fn main() -> ExitCode {
    let order = json!({
        "raw_json": r#"{"order":{"id":4242,"paid":true,"total":19.99,"currency":"EUR"}}"#
    });
    let runs = [
        ("data_pipeline", DataPipeline::run(order)),
        (
            "triage",
            Triage::run(json!({ "ticket": { "title": "Site down since 9am" } })),
        ),
        (
            "triage",
            Triage::run(json!({ "ticket": { "title": "Question about my invoice" } })),
        ),
        // The handler refuses a ticket without a title: a hard error of the run.
        (
            "triage",
            Triage::run(json!({ "ticket": { "body": "no title" } })),
        ),
    ];
    for (workflow, outcome) in &runs {
        report(workflow, outcome);
    }
    let completed = runs
        .iter()
        .filter(|(_, o)| matches!(o, Ok(Outcome::Completed { .. })))
        .count();
    if completed == runs.len() - 1 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_runtime::serde_json::Value;

    /// A workflow with routes gets `start` (and `serve`) on its handle: it
    /// serves on 127.0.0.1, answers a real request, and drains on shutdown.
    mod served {
        use std::io::{Read as _, Write as _};

        use agentd_runtime::agentd;
        use agentd_runtime::serve::ServeConfig;

        agentd!("workflows/pinger.toml");

        #[test]
        fn a_routed_workflow_is_served_through_its_handle() {
            let config = ServeConfig {
                bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                handle_signals: false,
                ..ServeConfig::default()
            };
            let running = Pinger::start(config).unwrap_or_else(|e| panic!("start: {e}"));
            let addr = running
                .local_addr()
                .unwrap_or_else(|| panic!("a routed workflow listens"));
            let mut conn = std::net::TcpStream::connect(addr)
                .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
            conn.write_all(b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .unwrap_or_else(|e| panic!("send: {e}"));
            let mut reply = String::new();
            conn.read_to_string(&mut reply)
                .unwrap_or_else(|e| panic!("read: {e}"));
            assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
            assert!(reply.ends_with("\r\n\r\npong from anonymous\n"), "{reply}");
            running.shutdown();
            assert!(running.wait().is_ok());
        }
    }

    #[test]
    fn embedded_types_carry_their_workflow_names() {
        use agentd_runtime::Workflow;
        assert_eq!(DataPipeline::INFO.workflow, "data_pipeline");
        assert_eq!(Triage::INFO.workflow, "triage");
    }

    #[test]
    fn urgent_ticket_takes_the_urgent_branch() {
        let report = Triage::run_with(agentd_runtime::embed::RunWith::input(
            json!({ "ticket": { "title": "outage in eu-west" } }),
        ));
        assert_eq!(report.trace.path(), vec!["classify", "page"]);
        let value: Option<Value> = match report.outcome {
            Ok(Outcome::Completed { final_value, .. }) => Some(final_value),
            _ => None,
        };
        assert_eq!(
            value,
            Some(json!({ "rendered": "page on-call for support (priority 1)" }))
        );
    }
}
