//! Unit tests of the validator: the 24 dialect-1 codes, the skip rules, our codes,
//! and the compat corpus.

use super::*;
use crate::codes::Code;
use crate::grammar::parse_interval;
use crate::parse::parse_str;
use std::time::Duration;

const START: &str = "[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"a\"\n";

fn run(text: &str) -> Vec<Diagnostic> {
    let r = parse_str(Path::new("wf.toml"), text);
    let doc = r
        .doc
        .unwrap_or_else(|| panic!("parse failed: {:?}", r.diagnostics));
    validate(&r.source, &doc, &ValidateOptions::default())
}

fn codes(diags: &[Diagnostic]) -> Vec<Code> {
    diags.iter().map(|d| d.code).collect()
}

fn errors(diags: &[Diagnostic]) -> Vec<Code> {
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.code)
        .collect()
}

/// The single diagnostic with `code`, its span text, and the whole list.
fn one(text: &str, code: Code) -> (Diagnostic, &str) {
    let diags = run(text);
    let found: Vec<&Diagnostic> = diags.iter().filter(|d| d.code == code).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one `{code}`, got {:#?}",
        codes(&diags)
    );
    let d = found[0].clone();
    assert!(d.help.is_some(), "`{code}` has no help line");
    let span = d.span.clone().expect("diagnostic has a span");
    (d, &text[span])
}

fn wf(body: &str) -> String {
    format!("name = \"t\"\n[policy]\n{START}{body}")
}

// ---- the 24 dialect-1 codes -------------------------------------------------

#[test]
fn dup_node_id_points_at_the_second_id() {
    let t = wf(
        "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = 'a'\ntype = \"terminate\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n",
    );
    let (d, s) = one(&t, Code::DupNodeId);
    assert_eq!(s, "'a'");
    assert!(d.is_error());
    assert!(d.message.contains("3 times"), "{}", d.message);
    assert!(
        !codes(&run(&t)).contains(&Code::Cycle),
        "duplicates must not fake a cycle"
    );
}

#[test]
fn dup_start_name() {
    let t = format!(
        "{}[[start_nodes]]\nname = 'main'\nsource = \"http\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n",
        wf("")
    );
    let (_, s) = one(&t, Code::DupStartName);
    assert_eq!(s, "'main'");
}

#[test]
fn dup_http_route_compares_methods_case_insensitively() {
    let t = wf(
        "[[http_routes]]\nmethod = \"POST\"\npath = \"/x\"\nstart_node = \"main\"\n[[http_routes]]\nmethod = \"post\"\npath = '/x'\nstart_node = \"main\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n",
    );
    let (_, s) = one(&t, Code::DupHttpRoute);
    assert_eq!(s, "'/x'");
}

#[test]
fn unknown_http_start_node_suggests() {
    let t = wf(
        "[[http_routes]]\nmethod = \"POST\"\npath = \"/x\"\nstart_node = \"mian\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n",
    );
    let (d, s) = one(&t, Code::UnknownHttpStartNode);
    assert_eq!(s, "\"mian\"");
    assert_eq!(d.help.as_deref(), Some("did you mean `main`?"));
}

#[test]
fn unknown_trigger_start_node() {
    let t = wf(
        "[[triggers]]\ntype = \"internal.event\"\nname = \"e\"\nstart_node = \"nope\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n",
    );
    let (_, s) = one(&t, Code::UnknownTriggerStartNode);
    assert_eq!(s, "\"nope\"");
}

#[test]
fn unknown_start_entry_node() {
    let t = "name = \"t\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"b\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n";
    let (d, s) = one(t, Code::UnknownStartEntryNode);
    assert_eq!(s, "\"b\"");
    assert!(d.message.contains("`main`"));
}

#[test]
fn dangling_edge_one_issue_per_end() {
    let t =
        wf("[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[edges]]\nfrom = \"x\"\nto = \"missing\"\n");
    let diags = run(&t);
    let d: Vec<&Diagnostic> = diags
        .iter()
        .filter(|d| d.code == Code::DanglingEdge)
        .collect();
    assert_eq!(d.len(), 2);
    assert_eq!(&t[d[0].span.clone().expect("span")], "\"x\"");
    assert_eq!(&t[d[1].span.clone().expect("span")], "\"missing\"");
}

#[test]
fn unknown_mcp_server_suggests() {
    let t = wf(
        "[[mcp_servers]]\nname = \"github\"\ncommand = [\"/bin/gh-mcp\"]\n[[nodes]]\nid = \"a\"\ntype = \"call_mcp_tool\"\ntool = \"t\"\nserver = \"gihtub\"\n",
    );
    let (d, s) = one(&t, Code::UnknownMcpServer);
    assert_eq!(s, "\"gihtub\"");
    assert_eq!(d.help.as_deref(), Some("did you mean `github`?"));
}

#[test]
fn ambiguous_mcp_server_needs_two_servers() {
    let servers = "[[mcp_servers]]\nname = \"one\"\ncommand = [\"/bin/a\"]\n[[mcp_servers]]\nname = \"two\"\ncommand = [\"/bin/b\"]\n";
    let node =
        "[[nodes]]\nid = \"a\"\ntype = \"read_mcp_resource\"\nresource_from = \"trigger.uri\"\n";
    let t = wf(&format!("{servers}{node}"));
    let (_, s) = one(&t, Code::AmbiguousMcpServer);
    assert_eq!(s, "\"a\"");
    // Zero or one server: no issue.
    assert!(!codes(&run(&wf(node))).contains(&Code::AmbiguousMcpServer));
}

fn agent(fields: &str) -> String {
    wf(&format!(
        "[[nodes]]\nid = \"a\"\ntype = \"agent_loop\"\nbackend = \"default\"\n{fields}"
    ))
}

#[test]
fn agent_loop_steps_out_of_range() {
    let t = agent("instructions = \"go\"\ntools = [\"read_file\"]\nmax_steps = 65\n");
    let (_, s) = one(&t, Code::AgentLoopStepsOutOfRange);
    assert_eq!(s, "65");
    let t = agent("instructions = \"go\"\ntools = [\"read_file\"]\nmax_steps = 0\n");
    assert_eq!(one(&t, Code::AgentLoopStepsOutOfRange).1, "0");
    let t = agent("instructions = \"go\"\ntools = [\"read_file\"]\nmax_steps = 64\n");
    assert!(errors(&run(&t)).is_empty());
}

#[test]
fn agent_loop_missing_instructions() {
    let t = agent("tools = [\"read_file\"]\nmax_steps = 4\n");
    let (_, s) = one(&t, Code::AgentLoopMissingInstructions);
    assert_eq!(s, "\"a\"");
}

#[test]
fn agent_loop_no_tools() {
    let t = agent("instructions = \"go\"\ntools = []\nmax_steps = 4\n");
    assert_eq!(one(&t, Code::AgentLoopNoTools).1, "[]");
    let t = agent("instructions = \"go\"\nmax_steps = 4\n");
    assert_eq!(one(&t, Code::AgentLoopNoTools).1, "\"a\"");
}

#[test]
fn agent_loop_unknown_tool() {
    let t = agent("instructions = \"go\"\ntools = [\"read_file\", \"raed_env\"]\nmax_steps = 4\n");
    let (d, s) = one(&t, Code::AgentLoopUnknownTool);
    assert_eq!(s, "\"raed_env\"");
    assert_eq!(d.help.as_deref(), Some("did you mean `read_env`?"));
}

#[test]
fn respond_status_out_of_range() {
    let t = wf("[[nodes]]\nid = \"a\"\ntype = \"respond\"\nbody_template = \"x\"\nstatus = 700\n");
    assert_eq!(one(&t, Code::RespondStatusOutOfRange).1, "700");
}

#[test]
fn respond_empty_content_type() {
    let t = wf(
        "[[nodes]]\nid = \"a\"\ntype = \"respond\"\nbody_template = \"x\"\ncontent_type = \"  \"\n",
    );
    assert_eq!(one(&t, Code::RespondEmptyContentType).1, "\"  \"");
}

fn map(fields: &str) -> String {
    wf(&format!(
        "[[nodes]]\nid = \"a\"\ntype = \"map\"\nitems_from = \"trigger.items\"\n{fields}"
    ))
}

#[test]
fn map_zero_max_items() {
    let t = map("workflow = \"c.toml\"\nmax_items = 0\n");
    assert_eq!(one(&t, Code::MapZeroMaxItems).1, "0");
}

#[test]
fn map_zero_concurrency() {
    let t = map("workflow = \"c.toml\"\nmax_items = 3\nmax_concurrent = 0\n");
    assert_eq!(one(&t, Code::MapZeroConcurrency).1, "0");
}

#[test]
fn map_empty_workflow() {
    let t = map("workflow = \" \"\nmax_items = 3\n");
    assert_eq!(one(&t, Code::MapEmptyWorkflow).1, "\" \"");
}

fn http(headers: &str) -> String {
    wf(&format!(
        "[[nodes]]\nid = \"a\"\ntype = \"http_request\"\nmethod = \"GET\"\nurl_from = \"trigger.url\"\nheaders = {headers}\n"
    ))
}

#[test]
fn http_header_bad_name() {
    let t = http("{ \"X Bad\" = \"v\" }");
    assert_eq!(one(&t, Code::HttpHeaderBadName).1, "\"X Bad\"");
    let t = http("{ \"\" = \"v\" }");
    assert_eq!(one(&t, Code::HttpHeaderBadName).1, "\"\"");
}

#[test]
fn http_header_crlf() {
    let t = http("{ X-A = \"a\\r\\nInjected: 1\" }");
    assert_eq!(one(&t, Code::HttpHeaderCrlf).1, "\"a\\r\\nInjected: 1\"");
}

#[test]
fn http_header_bad_placeholder() {
    let t = http("{ Authorization = \"Bearer {{trigger.token}}\" }");
    let (d, s) = one(&t, Code::HttpHeaderBadPlaceholder);
    assert_eq!(s, "\"Bearer {{trigger.token}}\"");
    assert!(d.message.contains("{{trigger.token}}"), "{}", d.message);
    assert_eq!(
        one(
            &http("{ A = \"x {{secret:K\" }"),
            Code::HttpHeaderBadPlaceholder
        )
        .1,
        "\"x {{secret:K\""
    );
    assert_eq!(
        one(
            &http("{ A = \"{{secret: }}\" }"),
            Code::HttpHeaderBadPlaceholder
        )
        .1,
        "\"{{secret: }}\""
    );
    assert!(errors(&run(&http("{ A = \"Bearer {{ secret:TOKEN }}\" }"))).is_empty());
}

#[test]
fn header_issues_come_out_in_name_order() {
    let t = http("{ \"Z Z\" = \"{{x}}\", \"A A\" = \"\\n\", \"M M\" = \"ok\" }");
    let diags = run(&t);
    let got: Vec<(Code, &str)> = diags
        .iter()
        .filter(|d| d.code.as_str().starts_with("http_header"))
        .map(|d| (d.code, &t[d.span.clone().expect("span")]))
        .collect();
    assert_eq!(
        got,
        vec![
            (Code::HttpHeaderBadName, "\"A A\""),
            (Code::HttpHeaderCrlf, "\"\\n\""),
            (Code::HttpHeaderBadName, "\"M M\""),
            (Code::HttpHeaderBadName, "\"Z Z\""),
            (Code::HttpHeaderBadPlaceholder, "\"{{x}}\""),
        ]
    );
    // Same input, same output, every time.
    assert_eq!(codes(&run(&t)), codes(&diags));
}

#[test]
fn cycle_points_at_the_closing_edge() {
    let t = wf(
        "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[nodes]]\nid = \"c\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"b\"\nto = \"c\"\n[[edges]]\nfrom = \"c\"\nto = 'b'\n",
    );
    let (d, s) = one(&t, Code::Cycle);
    assert_eq!(s, "'b'");
    assert_eq!(
        d.message,
        "workflow contains a cycle; nodes involved or downstream: b, c"
    );
    assert!(
        d.notes.iter().any(|n| n == "cycle: b → c → b"),
        "{:?}",
        d.notes
    );
}

#[test]
fn self_loop_is_a_cycle_and_loop_edges_are_exempt() {
    let t = wf("[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"a\"\n");
    assert_eq!(one(&t, Code::Cycle).1, "\"a\"");
    let t = wf(
        "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"a\"\nmax_iterations = 3\n",
    );
    assert!(errors(&run(&t)).is_empty(), "{:?}", codes(&run(&t)));
}

#[test]
fn ambiguous_start_entry_and_its_extra_unreachable_nodes() {
    let t = "name = \"t\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n";
    let (d, s) = one(t, Code::AmbiguousStartEntry);
    assert_eq!(s, "\"main\"");
    assert!(d.message.contains("2 root nodes"), "{}", d.message);
    // The ambiguous start reaches nothing, so both nodes are unreachable too.
    assert_eq!(
        codes(&run(t)),
        vec![
            Code::AmbiguousStartEntry,
            Code::UnreachableNode,
            Code::UnreachableNode
        ]
    );
}

#[test]
fn unreachable_node() {
    let t = wf(
        "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"island\"\ntype = \"merge\"\n",
    );
    let (d, s) = one(&t, Code::UnreachableNode);
    assert_eq!(s, "\"island\"");
    assert!(d.message.contains("`island`"));
}

// ---- skip rules ---------------------------------------------------------------

#[test]
fn dangling_edges_skip_cycle_and_reachability() {
    let t = wf(
        "[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[nodes]]\nid = \"island\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"b\"\nto = \"a\"\n[[edges]]\nfrom = \"gone\"\nto = \"island\"\n",
    );
    assert_eq!(errors(&run(&t)), vec![Code::DanglingEdge]);
}

#[test]
fn nodes_without_start_nodes_validate_clean() {
    let t = "name = \"t\"\n[policy]\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n";
    assert!(run(t).is_empty(), "{:?}", codes(&run(t)));
}

#[test]
fn empty_workflow_is_valid() {
    assert!(errors(&run("name = \"\"\n")).is_empty());
    assert!(run("name = \"x\"\n[policy]\n").is_empty());
}

#[test]
fn roots_count_loop_edges() {
    // `gen` has only a loop edge coming in, but that still makes it a non-root.
    let t = "name = \"t\"\n[policy]\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"gen\"\ntype = \"merge\"\n[[nodes]]\nid = \"eval\"\ntype = \"switch\"\nexpr = \"x\"\n[[edges]]\nfrom = \"gen\"\nto = \"eval\"\n[[edges]]\nfrom = \"eval\"\nto = \"gen\"\nwhen = \"retry\"\nmax_iterations = 2\n";
    let diags = run(t);
    assert!(!codes(&diags).contains(&Code::Cycle));
    let (d, _) = one(t, Code::AmbiguousStartEntry);
    assert!(d.message.contains("no root node"), "{}", d.message);
}

#[test]
fn loop_edges_count_for_reachability() {
    let t = wf(
        "[[nodes]]\nid = \"a\"\ntype = \"switch\"\nexpr = \"x\"\n[[nodes]]\nid = \"back\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"back\"\nwhen = \"go\"\nmax_iterations = 1\n",
    );
    assert!(errors(&run(&t)).is_empty(), "{:?}", codes(&run(&t)));
}

#[test]
fn spec_codes_come_in_spec_order() {
    let t = "name = \"t\"\n[policy]\n\
            [[start_nodes]]\nname = \"s\"\nsource = \"manual\"\nentry_node = \"nope\"\n\
            [[start_nodes]]\nname = \"s\"\nsource = \"manual\"\n\
            [[http_routes]]\nmethod = \"GET\"\npath = \"/\"\nstart_node = \"zz\"\n\
            [[triggers]]\ntype = \"internal.event\"\nname = \"e\"\nstart_node = \"zz\"\n\
            [[nodes]]\nid = \"m\"\ntype = \"map\"\nitems_from = \"x\"\nworkflow = \"\"\nmax_items = 0\n\
            [[nodes]]\nid = \"m\"\ntype = \"respond\"\nbody_template = \"\"\nstatus = 1\n\
            [[nodes]]\nid = \"l\"\ntype = \"agent_loop\"\nbackend = \"default\"\nmax_steps = 0\n\
            [[nodes]]\nid = \"t\"\ntype = \"call_mcp_tool\"\ntool = \"x\"\nserver = \"none\"\n\
            [[edges]]\nfrom = \"m\"\nto = \"q\"\n";
    assert_eq!(
        errors(&run(t)),
        vec![
            Code::DupNodeId,
            Code::DupStartName,
            Code::UnknownHttpStartNode,
            Code::UnknownTriggerStartNode,
            Code::UnknownStartEntryNode,
            Code::DanglingEdge,
            Code::UnknownMcpServer,
            Code::AgentLoopStepsOutOfRange,
            Code::AgentLoopMissingInstructions,
            Code::AgentLoopNoTools,
            Code::RespondStatusOutOfRange,
            Code::MapZeroMaxItems,
            Code::MapEmptyWorkflow,
        ]
    );
}

#[test]
fn wrapped_documents_get_spans_inside_the_wrapper() {
    let t = "[[workflows]]\nname = \"t\"\n[workflows.policy]\n[[workflows.start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"a\"\n[[workflows.nodes]]\nid = \"a\"\ntype = \"merge\"\n[[workflows.edges]]\nfrom = \"a\"\nto = \"ghost\"\n";
    assert_eq!(one(t, Code::DanglingEdge).1, "\"ghost\"");
}

#[test]
fn a_clean_workflow_has_no_diagnostics() {
    let t = "name = \"clean\"\n\
            [policy.http]\nurls = [\"http://api.internal/*\"]\n\
            [[intelligence.backends]]\nname = \"local\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:8000/v1\"\n\
            [auth.bearer.default]\ntokens_env = \"TOKENS\"\n\
            [[start_nodes]]\nname = \"main\"\nsource = \"http\"\nentry_node = \"fetch\"\n\
            [[http_routes]]\nmethod = \"POST\"\npath = \"/run\"\nstart_node = \"main\"\nauth = \"bearer\"\n\
            [[triggers]]\ntype = \"cron\"\nschedule = \"30 2 * * *\"\nstart_node = \"main\"\n\
            [[triggers]]\ntype = \"interval\"\nevery = \"5m\"\nstart_node = \"main\"\n\
            [[triggers]]\ntype = \"fs_watch\"\npath = \"/tmp\"\nevents = [\"Create\", \"delete\"]\nstart_node = \"main\"\n\
            [[nodes]]\nid = \"fetch\"\ntype = \"http_request\"\nmethod = \"GET\"\nurl_from = \"trigger.url\"\nheaders = { Authorization = \"Bearer {{secret:API}}\" }\n\
            [[nodes]]\nid = \"judge\"\ntype = \"llm_infer\"\nbackend = \"local\"\nprompt = \"ok? {{body}}\"\ninput_from = \"fetch\"\noutput_schema = \"inline\"\n\
            [[nodes]]\nid = \"ok\"\ntype = \"condition\"\nexpr = \"judge.parsed.ok\"\n\
            [[nodes]]\nid = \"done\"\ntype = \"terminate\"\n\
            [[nodes]]\nid = \"bad\"\ntype = \"fail\"\nreason = \"no\"\n\
            [[edges]]\nfrom = \"fetch\"\nto = \"judge\"\n\
            [[edges]]\nfrom = \"fetch\"\nto = \"bad\"\nwhen = \"error\"\n\
            [[edges]]\nfrom = \"judge\"\nto = \"ok\"\n\
            [[edges]]\nfrom = \"ok\"\nto = \"done\"\nwhen = \"true\"\n\
            [[edges]]\nfrom = \"ok\"\nto = \"bad\"\nwhen = \"false\"\n";
    let diags = run(t);
    assert!(diags.is_empty(), "{diags:#?}");
}

// ---- extra codes ----------------------------------------------------------------

fn two_nodes(edges: &str) -> String {
    wf(&format!(
        "[[nodes]]\nid = \"a\"\ntype = \"http_request\"\nmethod = \"GET\"\nurl_from = \"trigger.u\"\n\
             [[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[nodes]]\nid = \"c\"\ntype = \"merge\"\n{edges}"
    ))
}

#[test]
fn ambiguous_successor_for_fan_out() {
    let t = two_nodes("[[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = 'a'\nto = \"c\"\n");
    let (d, s) = one(&t, Code::AmbiguousSuccessor);
    assert_eq!(s, "'a'");
    assert!(d.is_error());
    assert!(
        d.message.contains("2 out-edges for the unlabelled branch"),
        "{}",
        d.message
    );
}

#[test]
fn ambiguous_successor_for_a_repeated_label() {
    let t = two_nodes(
        "[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"error\"\n[[edges]]\nfrom = \"a\"\nto = \"c\"\nwhen = 'error'\n",
    );
    assert_eq!(one(&t, Code::AmbiguousSuccessor).1, "'error'");
    // Different labels are fine.
    let t = two_nodes(
        "[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"error\"\n[[edges]]\nfrom = \"a\"\nto = \"c\"\n",
    );
    assert!(errors(&run(&t)).is_empty(), "{:?}", codes(&run(&t)));
}

#[test]
fn ambiguous_successor_with_loop_edges() {
    let body = |max: u32| {
        wf(&format!(
            "[[nodes]]\nid = \"a\"\ntype = \"switch\"\nexpr = \"x\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n\
                 [[edges]]\nfrom = \"a\"\nto = \"a\"\nwhen = \"retry\"\nmax_iterations = {max}\n\
                 [[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"retry\"\n"
        ))
    };
    let t = body(2);
    let (d, s) = one(&t, Code::AmbiguousSuccessor);
    assert_eq!(s, "\"retry\"");
    assert!(d.notes.iter().any(|n| n.contains("loop edge")));
    // A loop edge that can never be traversed collides with nothing.
    assert!(
        errors(&run(&body(0))).is_empty(),
        "{:?}",
        codes(&run(&body(0)))
    );
}

#[test]
fn ambiguous_successor_ignores_dead_and_ending_sources() {
    // fail/terminate ignore their out-edges; a condition never takes unconditional edges.
    for kind in [
        "type = \"fail\"",
        "type = \"terminate\"",
        "type = \"condition\"\nexpr = \"x\"",
    ] {
        let t = wf(&format!(
            "[[nodes]]\nid = \"a\"\n{kind}\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[nodes]]\nid = \"c\"\ntype = \"merge\"\n\
                 [[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"a\"\nto = \"c\"\n"
        ));
        assert!(
            !codes(&run(&t)).contains(&Code::AmbiguousSuccessor),
            "{kind}"
        );
    }
}

fn route(auth: &str, extra: &str) -> String {
    wf(&format!(
        "{extra}[[http_routes]]\nmethod = \"POST\"\npath = \"/x\"\nstart_node = \"main\"\nauth = {auth}\n\
             [[nodes]]\nid = \"a\"\ntype = \"merge\"\n"
    ))
}

#[test]
fn bad_auth_ref() {
    let t = route("\"Bearer\"", "[auth.bearer.default]\ntokens = [\"x\"]\n");
    let (d, s) = one(&t, Code::BadAuthRef);
    assert_eq!(s, "\"Bearer\"");
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.starts_with("did you mean `bearer`?")),
        "{:?}",
        d.help
    );
    assert_eq!(
        one(&route("\"mtls:x\"", ""), Code::BadAuthRef).1,
        "\"mtls:x\""
    );
    assert_eq!(
        one(&route("\"bearer:\"", ""), Code::BadAuthRef).1,
        "\"bearer:\""
    );
    for ok in ["\"\"", "\"NONE\"", "\" none \""] {
        assert!(errors(&run(&route(ok, ""))).is_empty(), "{ok}");
    }
}

#[test]
fn unknown_auth_binding() {
    let t = route("\"bearer\"", "[auth.bearer.ops]\ntokens = [\"x\"]\n");
    let (d, s) = one(&t, Code::UnknownAuthBinding);
    assert_eq!(s, "\"bearer\"");
    assert!(d.message.contains("`bearer:default`"), "{}", d.message);
    let t = route("\"hmac:gihub\"", "[auth.hmac.github]\nsecret_env = \"S\"\n");
    let (d, _) = one(&t, Code::UnknownAuthBinding);
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.starts_with("did you mean `github`?"))
    );
    assert!(
        errors(&run(&route(
            "\"hmac:github\"",
            "[auth.hmac.github]\nsecret_env = \"S\"\n"
        )))
        .is_empty()
    );
}

#[test]
fn mtls_without_client_auth() {
    let t = route("\"mtls\"", "");
    assert_eq!(one(&t, Code::MtlsWithoutClientAuth).1, "\"mtls\"");
    let tls = "[server.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n[server.tls.client_auth]\nmode = \"required\"\nca_file = \"ca.pem\"\n";
    assert!(errors(&run(&route("\"mtls\"", tls))).is_empty());
}

fn trigger(body: &str) -> String {
    wf(&format!(
        "[[triggers]]\n{body}start_node = \"main\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n"
    ))
}

#[test]
fn invalid_cron() {
    let t = trigger("type = \"cron\"\nschedule = \"0 61 * * * *\"\n");
    let (d, s) = one(&t, Code::InvalidCron);
    assert_eq!(s, "\"0 61 * * * *\"");
    assert!(d.message.contains("Minutes"), "{}", d.message);
    let t = trigger("type = \"cron\"\nschedule = \"every day\"\n");
    assert!(one(&t, Code::InvalidCron).0.message.contains("found 2"));
    for ok in [
        "30 2 * * *",
        "0 30 2 * * *",
        "0 30 2 * * * 2030",
        "@daily",
        "0 0 9 * * MON-FRI",
    ] {
        let t = trigger(&format!("type = \"cron\"\nschedule = \"{ok}\"\n"));
        assert!(errors(&run(&t)).is_empty(), "{ok}: {:?}", run(&t));
    }
}

#[test]
fn invalid_interval() {
    let t = trigger("type = \"interval\"\nevery = \"5 weeks\"\n");
    assert_eq!(one(&t, Code::InvalidInterval).1, "\"5 weeks\"");
    for bad in ["0s", "5", "m", "1.5h", "-1s", ""] {
        assert!(parse_interval(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_interval("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_interval("2 days"), Ok(Duration::from_secs(172_800)));
    assert_eq!(parse_interval("10secs"), Ok(Duration::from_secs(10)));
    assert!(parse_interval("18446744073709551615d").is_err());
}

#[test]
fn invalid_fs_watch_event() {
    let t = trigger(
        "type = \"fs_watch\"\npath = \"/tmp\"\nevents = [\"CREATE\", \"modfy\", \"Rename\"]\n",
    );
    let (d, s) = one(&t, Code::InvalidFsWatchEvent);
    assert_eq!(s, "\"modfy\"");
    assert_eq!(d.help.as_deref(), Some("did you mean `modify`?"));
}

#[test]
fn invalid_fs_watch_debounce_bounds_debounce_ms() {
    let t = trigger("type = \"fs_watch\"\npath = \"/tmp\"\ndebounce_ms = 600001\n");
    let (d, s) = one(&t, Code::InvalidFsWatchDebounce);
    assert_eq!(s, "600001");
    assert!(d.message.contains("600000"), "{}", d.message);
    let ok = trigger("type = \"fs_watch\"\npath = \"/tmp\"\ndebounce_ms = 600000\n");
    assert!(
        !codes(&run(&ok)).contains(&Code::InvalidFsWatchDebounce),
        "{:?}",
        codes(&run(&ok))
    );
}

#[test]
fn unknown_trigger_mcp_server_is_an_error() {
    let t =
        trigger("type = \"mcp.resource.updated\"\nserver = \"docs\"\nresource = \"docs://*\"\n");
    let (d, s) = one(&t, Code::UnknownTriggerMcpServer);
    assert_eq!(s, "\"docs\"");
    assert!(d.is_error());
}

fn llm(backend: &str, extra: &str) -> String {
    wf(&format!(
        "{extra}[[nodes]]\nid = \"a\"\ntype = \"llm_infer\"\nbackend = {backend}\nprompt = \"p\"\n"
    ))
}

const CLAUDE: &str = "[[intelligence.backends]]\nname = \"claude\"\nprovider = \"anthropic\"\nmodel = \"m\"\napi_key_env = \"K\"\n";

#[test]
fn unknown_backend() {
    let t = llm("\"claud\"", CLAUDE);
    let (d, s) = one(&t, Code::UnknownBackend);
    assert_eq!(s, "\"claud\"");
    assert_eq!(d.help.as_deref(), Some("did you mean `claude`?"));
    assert!(errors(&run(&llm("\"claude\"", CLAUDE))).is_empty());
    assert!(errors(&run(&llm("\"default\"", ""))).is_empty());
}

#[test]
fn child_workflows_accept_parent_backends_and_skip_no_policy() {
    let t = "name = \"c\"\n[[nodes]]\nid = \"a\"\ntype = \"llm_infer\"\nbackend = \"claude\"\nprompt = \"p\"\n";
    let r = parse_str(Path::new("c.toml"), t);
    let doc = r.doc.expect("parses");
    let opts = ValidateOptions::default();
    assert!(validate_child(&r.source, &doc, &opts, &["claude".to_string()]).is_empty());
    assert_eq!(
        codes(&validate(&r.source, &doc, &opts)),
        vec![Code::UnknownBackend, Code::NoPolicy]
    );
}

#[test]
fn a_child_backend_the_root_does_not_declare_is_unknown_even_if_the_child_declares_it() {
    let t = format!(
        "name = \"c\"\n[[nodes]]\nid = \"a\"\ntype = \"llm_infer\"\nbackend = \"claude\"\nprompt = \"p\"\n{CLAUDE}"
    );
    let r = parse_str(Path::new("c.toml"), &t);
    let doc = r.doc.expect("parses");
    let opts = ValidateOptions::default();
    let diags = validate_child(&r.source, &doc, &opts, &["other".to_string()]);
    let d = diags
        .iter()
        .find(|d| d.code == Code::UnknownBackend)
        .unwrap_or_else(|| panic!("{diags:?}"));
    assert!(
        d.notes.iter().any(|n| n.contains("only the root's")),
        "{d:?}"
    );
    assert!(
        !codes(&validate_child(
            &r.source,
            &doc,
            &opts,
            &["claude".to_string()]
        ))
        .contains(&Code::UnknownBackend)
    );
}

#[test]
fn reserved_backend_name() {
    let t = llm("\"default\"", &CLAUDE.replace("claude", "default"));
    assert_eq!(one(&t, Code::ReservedBackendName).1, "\"default\"");
}

#[test]
fn dup_backend_name() {
    let t = llm(
        "\"claude\"",
        &format!("{CLAUDE}{}", CLAUDE.replace("\"claude\"", "'claude'")),
    );
    assert_eq!(one(&t, Code::DupBackendName).1, "'claude'");
}

#[test]
fn output_schema_unreadable() {
    let t = llm("\"default\"", "").replace(
        "prompt = \"p\"\n",
        "prompt = \"p\"\noutput_schema = \"no/such/schema.json\"\n",
    );
    let (d, s) = one(&t, Code::OutputSchemaUnreadable);
    assert_eq!(s, "\"no/such/schema.json\"");
    assert!(!d.is_error());
    let t = llm("\"default\"", "").replace(
        "prompt = \"p\"\n",
        "prompt = \"p\"\noutput_schema = \"inline\"\n",
    );
    assert!(run(&t).is_empty());
}

#[test]
fn output_schema_resolves_against_base_dir_then_cwd() {
    let dir = crate::test_support::temp_dir("validate-output-schema");
    std::fs::create_dir_all(dir.join("schemas")).expect("mkdir");
    std::fs::write(dir.join("schemas/ok.json"), "{\"type\": \"object\"}").expect("write");
    std::fs::write(dir.join("schemas/bad.json"), "not json").expect("write");
    let text = |f: &str| {
        format!(
            "name = \"t\"\n[policy]\n[[nodes]]\nid = \"a\"\ntype = \"llm_infer\"\nbackend = \"default\"\nprompt = \"p\"\noutput_schema = \"schemas/{f}\"\n"
        )
    };
    let check = |f: &str, opts: &ValidateOptions| {
        let t = text(f);
        let r = parse_str(&dir.join("wf.toml"), &t);
        let doc = r.doc.expect("parses");
        codes(&validate(&r.source, &doc, opts))
    };
    let by_dir = ValidateOptions::for_file(&dir.join("wf.toml"));
    assert!(check("ok.json", &by_dir).is_empty());
    assert_eq!(
        check("bad.json", &by_dir),
        vec![Code::OutputSchemaUnreadable]
    );
    let by_cwd = ValidateOptions {
        base_dir: PathBuf::from("/nonexistent"),
        cwd: dir.to_path_buf(),
        ..ValidateOptions::default()
    };
    assert!(check("ok.json", &by_cwd).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unlabelled_source_when() {
    let t = wf(
        "[[nodes]]\nid = \"a\"\ntype = \"read_file\"\npath_from = \"trigger.p\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"error\"\n",
    );
    let (d, s) = one(&t, Code::UnlabelledSourceWhen);
    assert_eq!(s, "\"error\"");
    assert!(!d.is_error());
    // Exactly one warning for the edge.
    assert_eq!(codes(&run(&t)), vec![Code::UnlabelledSourceWhen]);
}

fn cond(edges: &str) -> String {
    wf(&format!(
        "[[nodes]]\nid = \"a\"\ntype = \"condition\"\nexpr = \"trigger.x\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n{edges}"
    ))
}

#[test]
fn error_edge_never_taken() {
    let t = cond(
        "[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"true\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"false\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"error\"\n",
    );
    let (d, s) = one(&t, Code::ErrorEdgeNeverTaken);
    assert_eq!(s, "\"error\"");
    assert!(!d.is_error());
    assert_eq!(codes(&run(&t)), vec![Code::ErrorEdgeNeverTaken]);
}

#[test]
fn exhausted_edge_not_agent_loop() {
    let t = two_nodes(
        "[[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"a\"\nto = \"c\"\nwhen = \"exhausted\"\n",
    );
    assert_eq!(one(&t, Code::ExhaustedEdgeNotAgentLoop).1, "\"exhausted\"");
    assert_eq!(codes(&run(&t)), vec![Code::ExhaustedEdgeNotAgentLoop]);
}

#[test]
fn label_never_emitted() {
    let t = cond(
        "[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"true\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"False\"\n",
    );
    let (d, s) = one(&t, Code::LabelNeverEmitted);
    assert_eq!(s, "\"False\"");
    assert!(
        d.help
            .as_deref()
            .is_some_and(|h| h.starts_with("did you mean `false`?"))
    );
}

#[test]
fn condition_missing_branch() {
    let t = cond("[[edges]]\nfrom = \"a\"\nto = \"b\"\nwhen = \"true\"\n");
    let (d, s) = one(&t, Code::ConditionMissingBranch);
    assert_eq!(s, "\"a\"");
    assert!(d.message.contains("`when = \"false\"`"), "{}", d.message);
    assert!(!d.is_error());
}

#[test]
fn no_policy_points_at_the_name_key() {
    let t = "name = \"t\"\n";
    let (d, s) = one(t, Code::NoPolicy);
    assert_eq!(s, "name");
    assert!(!d.is_error());
}

// ---- acceptance: the compat corpus validates without errors -----------------------

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            toml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
}

fn assert_no_errors(label: &str, path: &Path, text: &str, failures: &mut Vec<String>) {
    let r = parse_str(path, text);
    let Some(doc) = r.doc else {
        failures.push(format!("{label}: parse failed: {:?}", r.diagnostics));
        return;
    };
    let opts = ValidateOptions::for_file(path);
    let errs: Vec<String> = validate(&r.source, &doc, &opts)
        .into_iter()
        .filter(Diagnostic::is_error)
        .map(|d| format!("[{}] {}", d.code, d.message))
        .collect();
    if !errs.is_empty() {
        failures.push(format!("{label}: {errs:#?}"));
    }
}

#[test]
#[cfg_attr(
    agentd_no_compat,
    ignore = "compat corpus missing: set AGENTD_COMPAT_DIR"
)]
fn compat_workflows_validate_without_errors() {
    let compat = crate::compat_support::dir();
    let mut failures = Vec::new();
    let mut checked = 0;

    // Plain workflow files: examples, fixtures and the fixture suite's workflows.
    let mut files = Vec::new();
    for sub in ["examples", "fixtures", "fixture-suite"] {
        toml_files(&compat.join(sub), &mut files);
    }
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read compat file");
        let Ok(value) = text.parse::<toml::Table>() else {
            failures.push(format!("{}: not TOML", f.display()));
            continue;
        };
        let is_workflow = ["name", "nodes", "workflows"]
            .iter()
            .any(|k| value.contains_key(*k))
            && !value.contains_key("expected")
            && !value.contains_key("mocks");
        if !is_workflow {
            continue;
        }
        checked += 1;
        assert_no_errors(&f.display().to_string(), f, &text, &mut failures);
    }

    // Conformance scenarios: the `[workflow] inline` document.
    let mut scenarios = Vec::new();
    toml_files(&compat.join("corpus"), &mut scenarios);
    for f in &scenarios {
        let text = std::fs::read_to_string(f).expect("read scenario");
        let value: toml::Table = text.parse().expect("scenario is TOML");
        let Some(inline) = value
            .get("workflow")
            .and_then(|w| w.get("inline"))
            .and_then(toml::Value::as_str)
        else {
            continue;
        };
        let dir = f.parent().unwrap_or(Path::new("."));
        let inline = inline.replace("${SCENARIO_DIR}", &dir.display().to_string());
        checked += 1;
        assert_no_errors(
            &f.display().to_string(),
            &dir.join("inline.toml"),
            &inline,
            &mut failures,
        );
    }
    assert!(checked >= 20, "only {checked} compat workflows found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
