//! The key registry: what each key of the document model does, provably.
//!
//! Every key path of [`crate::model`] (as enumerated by [`crate::schema::key_paths`])
//! has exactly one entry here, and `agentd-compiler/tests/keys.rs` fails otherwise:
//!
//! - [`KeyStatus::Honoured`]: the key works as docs/dialect.md says, and the named test
//!   (`FILE::FUNCTION`, relative to the workspace root) shows its effect in a binary
//!   built by the real `agentd`;
//! - [`KeyStatus::Diagnosed`]: every use of the key is reported with the named code
//!   (a [`Code`] of the registry), e.g. `Code::KeyHasNoEffect`.
//!
//! Adding a key to the model? Add its line here, in the order of `key_paths()` (the
//! test prints the exact line to add). Data only: nothing here changes what the
//! compiler accepts or emits.

/// What the registry says about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Works; the test (`path/to/file.rs::function`) shows its effect in a built binary.
    Honoured(&'static str),
    /// Every use is reported with this diagnostic code.
    Diagnosed(Code),
}

use crate::codes::Code;
use KeyStatus::{Diagnosed, Honoured};

const HELLO: &str = "tests/e2e.rs::hello_builds_a_static_binary_that_writes_the_greeting";
const CORPUS: &str = "tests/e2e.rs::compat_corpus_and_fixture_suite_pass_in_full";
const MAP: &str = "tests/e2e.rs::compat_map_fanout_example_runs_its_child_per_item_under_max_items";
const PARALLEL: &str = "tests/e2e.rs::compat_parallel_fanout_example_joins_both_branches";
const CALL: &str =
    "tests/e2e.rs::compat_subworkflow_parent_example_routes_a_successful_call_to_done";
const POLLER: &str = "tests/e2e.rs::compat_examples_with_effect_nodes_build_and_start";
const ROUTES: &str = "tests/serve_e2e.rs::routes_respond_statuses_decoding_and_fixed_endpoints";
const IDEM: &str = "tests/serve_e2e.rs::idempotency_rate_limits_keep_alive_traceparent_and_metrics";
const SCHEMA: &str =
    "tests/serve_e2e.rs::input_schema_rejects_a_nonconforming_body_with_400_naming_its_pointer";
const AUTH: &str =
    "tests/auth_e2e.rs::every_auth_scheme_of_secure_api_accepts_and_refuses_over_mutual_tls";
const EFFECTS: &str = "tests/effects_e2e.rs::a_2xx_status_is_recorded_by_the_command_and_the_token_only_reaches_the_server";
const URLPOL: &str = "tests/effects_e2e.rs::a_url_outside_the_policy_is_refused";
const LLMSOCK: &str =
    "tests/llm_e2e.rs::a_built_binary_routes_on_a_socket_backend_with_schema_repair";
const LLMREM: &str = "tests/llm_e2e.rs::a_built_binary_calls_a_named_chat_completions_backend_with_a_key_from_a_secret_file";
const OBS: &str = "tests/obs_e2e.rs::json_logs_and_the_audit_sink_record_runs_and_never_the_secret";
const OTEL: &str = "tests/otel_e2e.rs::a_run_exports_its_spans_as_one_trace_over_otlp_grpc";
const BUDGET: &str = "agentd-compiler/tests/budget.rs::memory_and_cpu_budgets_are_process_limits_of_the_running_binary";
const DURABLE: &str =
    "tests/durable_e2e.rs::compat_approval_gate_pauses_with_exit_7_and_resumes_to_completion";
const HANDLERS: &str =
    "tests/handlers_e2e.rs::build_with_handlers_binds_the_crate_and_routes_on_the_handler_label";
const WRAPPED: &str =
    "tests/e2e.rs::wrapped_shape_file_nodes_child_starts_and_retry_work_in_a_built_binary";
const REGO: &str = "tests/rego_e2e.rs::a_rego_policy_denying_env_read_exits_5_with_policy_denied_and_an_override_can_allow_it";
const REGOFILE: &str = "tests/rego_e2e.rs::a_rego_file_is_baked_at_build_time_and_allows_the_run";
const MCPEMPTY: &str = "tests/mcp-double/tests/policy.rs::an_empty_policy_denies_an_mcp_call_before_the_server_sees_it";
const MCPREGO: &str = "tests/mcp-double/tests/policy.rs::rego_decides_an_mcp_call_the_lists_allow";
const MCPENV: &str = "tests/mcp-double/tests/e2e.rs::a_built_binary_runs_mcp_nodes_and_an_agent_loop_against_real_processes";
const MCPWIRE: &str =
    "tests/mcp_e2e.rs::the_client_speaks_streamable_http_sessions_headers_resumption_and_delete";
const MCPTIME: &str =
    "tests/mcp_e2e.rs::server_everything_answers_echo_sum_resource_errors_and_timeouts_over_stdio";
const SANDBOX: &str =
    "tests/sandbox_e2e.rs::sandbox_mode_off_compiles_no_sandbox_and_enforce_then_refuses_to_start";
const MCPTRIG: &str = "tests/mcp-double/tests/trigger.rs::resource_triggers_fire_their_start_nodes_with_the_uri_debounced_and_only_for_new_uris";
const TRIGGERS: &str = "tests/triggers_e2e.rs::cron_interval_and_fs_watch_triggers_fire_their_own_start_nodes_as_configured";
const SECRETCMD: &str =
    "tests/secrets_e2e.rs::a_command_secret_runs_a_real_program_whose_output_is_the_client_secret";
const OAUTH2: &str =
    "tests/secrets_e2e.rs::an_oauth2_token_is_fetched_once_and_reused_by_every_request";
const OAUTHSKEW: &str =
    "tests/secrets_e2e.rs::a_token_inside_its_skew_is_fetched_again_at_every_use";
const AUTHKEYS: &str = "tests/auth_keys_e2e.rs::hmac_header_and_prefix_and_oidc_inline_jwks_skew_and_subjects_decide_what_verifies";
const KEYSFS: &str = "tests/keys_e2e.rs::loop_budgets_jitter_fs_write_budget_and_a_rotated_json_log_act_in_a_built_binary";
const KEYSFX: &str = "tests/keys_e2e.rs::body_from_run_time_budget_disabled_logging_and_audit_reasons_act_in_a_built_binary";
const OTELSAMPLE: &str =
    "tests/otel_e2e.rs::sample_ratio_keeps_the_traces_whose_id_falls_below_it_over_grpc";
const MCPNARROW: &str = "tests/mcp-double/tests/policy.rs::policy_mcp_tools_and_resources_narrow_what_the_server_allows";
const SIGNPEM: &str = "agentd-compiler/tests/provenance.rs::an_inline_public_key_pem_verifies_the_build_and_the_policy_overrides";
const MCPOAUTHSUITE: &str =
    "tests/mcp_oauth_e2e.rs::the_conformance_suite_passes_auth_client_credentials_basic";
const MCPOAUTH: &str = "tests/mcp_oauth_e2e.rs::an_oauth_mcp_server_gets_one_token_per_401_with_the_configured_scope_and_post_auth";
const SIGNED: &str = "agentd-compiler/tests/provenance.rs::signed_build_carries_source_digests_and_signer_fingerprint";

/// Every key path of the model and its status, in `key_paths()` order.
pub const KEYS: &[(&str, KeyStatus)] = &[
    ("auth", Honoured(AUTH)),
    ("auth.basic", Honoured(AUTH)),
    (
        "auth.basic.*.credentials",
        Diagnosed(Code::AuthLiteralSecret),
    ),
    ("auth.basic.*.credentials_env", Honoured(AUTH)),
    ("auth.bearer", Honoured(AUTH)),
    ("auth.bearer.*.tokens", Diagnosed(Code::AuthLiteralSecret)),
    ("auth.bearer.*.tokens_env", Honoured(AUTH)),
    ("auth.hmac", Honoured(AUTH)),
    ("auth.hmac.*.header", Honoured(AUTHKEYS)),
    ("auth.hmac.*.prefix", Honoured(AUTHKEYS)),
    ("auth.hmac.*.secret", Diagnosed(Code::AuthLiteralSecret)),
    ("auth.hmac.*.secret_env", Honoured(AUTH)),
    ("auth.hmac.*.timestamp_header", Honoured(AUTH)),
    ("auth.hmac.*.tolerance_secs", Honoured(AUTH)),
    ("auth.oidc", Honoured(AUTH)),
    ("auth.oidc.*.algorithms", Honoured(AUTH)),
    ("auth.oidc.*.audience", Honoured(AUTH)),
    ("auth.oidc.*.clock_skew_secs", Honoured(AUTHKEYS)),
    ("auth.oidc.*.issuer", Honoured(AUTH)),
    ("auth.oidc.*.jwks_file", Honoured(AUTH)),
    ("auth.oidc.*.jwks_json", Honoured(AUTHKEYS)),
    ("auth.oidc.*.subject_allowlist", Honoured(AUTHKEYS)),
    ("budget", Honoured(LLMSOCK)),
    ("budget.max_cpu_secs", Honoured(BUDGET)),
    ("budget.max_fs_write_mb", Honoured(KEYSFS)),
    ("budget.max_llm_tokens", Honoured(LLMSOCK)),
    ("budget.max_memory_mb", Honoured(BUDGET)),
    ("budget.max_run_time_secs", Honoured(KEYSFX)),
    ("description", Honoured(HELLO)),
    ("edges", Honoured(HELLO)),
    ("edges[].from", Honoured(HELLO)),
    ("edges[].max_iterations", Honoured(KEYSFS)),
    ("edges[].to", Honoured(HELLO)),
    ("edges[].when", Honoured(CORPUS)),
    ("http_routes", Honoured(ROUTES)),
    ("http_routes[].auth", Honoured(AUTH)),
    ("http_routes[].idempotency_key", Honoured(IDEM)),
    ("http_routes[].idempotency_ttl_secs", Honoured(IDEM)),
    ("http_routes[].input_schema", Honoured(SCHEMA)),
    ("http_routes[].method", Honoured(ROUTES)),
    ("http_routes[].path", Honoured(ROUTES)),
    ("http_routes[].rate_limit", Honoured(IDEM)),
    ("http_routes[].rate_limit.capacity", Honoured(IDEM)),
    ("http_routes[].rate_limit.per_second", Honoured(IDEM)),
    ("http_routes[].start_node", Honoured(ROUTES)),
    ("intelligence", Honoured(LLMREM)),
    ("intelligence.backends", Honoured(LLMREM)),
    ("intelligence.backends[].api_key_env", Honoured(LLMREM)),
    ("intelligence.backends[].base_url", Honoured(LLMREM)),
    ("intelligence.backends[].max_tokens", Honoured(LLMREM)),
    ("intelligence.backends[].model", Honoured(LLMREM)),
    ("intelligence.backends[].name", Honoured(LLMREM)),
    ("intelligence.backends[].provider", Honoured(LLMREM)),
    ("logging", Honoured(OBS)),
    ("logging.audit", Honoured(OBS)),
    ("logging.audit.include_reason", Honoured(KEYSFX)),
    ("logging.audit.redact_fields", Honoured(OBS)),
    ("logging.audit.target", Honoured(OBS)),
    ("logging.enabled", Honoured(KEYSFX)),
    ("logging.format", Honoured(OBS)),
    ("logging.level", Honoured(OBS)),
    ("logging.otel", Honoured(OTEL)),
    ("logging.otel.endpoint", Honoured(OTEL)),
    ("logging.otel.protocol", Honoured(OTELSAMPLE)),
    ("logging.otel.resource_attrs", Honoured(OTEL)),
    ("logging.otel.sample_ratio", Honoured(OTELSAMPLE)),
    ("logging.otel.service_name", Honoured(OTEL)),
    ("logging.rotation", Honoured(KEYSFS)),
    ("logging.target", Honoured(KEYSFS)),
    ("mcp_servers", Honoured(CORPUS)),
    ("mcp_servers[].allow_resources", Honoured(CORPUS)),
    ("mcp_servers[].allow_tools", Honoured(CORPUS)),
    ("mcp_servers[].command", Honoured(MCPREGO)),
    ("mcp_servers[].env", Honoured(MCPENV)),
    ("mcp_servers[].headers", Honoured(MCPWIRE)),
    ("mcp_servers[].name", Honoured(CORPUS)),
    ("mcp_servers[].oauth", Honoured(MCPOAUTHSUITE)),
    ("mcp_servers[].oauth.client_id", Honoured(MCPOAUTHSUITE)),
    ("mcp_servers[].oauth.client_secret", Honoured(MCPOAUTHSUITE)),
    ("mcp_servers[].oauth.grant", Honoured(MCPOAUTHSUITE)),
    ("mcp_servers[].oauth.scope", Honoured(MCPOAUTH)),
    ("mcp_servers[].oauth.token_auth", Honoured(MCPOAUTH)),
    ("mcp_servers[].timeout_secs", Honoured(MCPTIME)),
    ("mcp_servers[].url", Honoured(MCPWIRE)),
    ("name", Honoured(HELLO)),
    ("nodes", Honoured(HELLO)),
    ("nodes[].id", Honoured(HELLO)),
    ("nodes[].retry", Honoured(WRAPPED)),
    ("nodes[].retry.backoff_ms", Honoured(WRAPPED)),
    ("nodes[].retry.jitter", Honoured(KEYSFS)),
    ("nodes[].retry.max_attempts", Honoured(WRAPPED)),
    ("nodes[].retry.on", Honoured(WRAPPED)),
    ("nodes[].type", Honoured(HELLO)),
    ("nodes[agent_loop].backend", Honoured(CORPUS)),
    ("nodes[agent_loop].instructions", Honoured(CORPUS)),
    ("nodes[agent_loop].instructions_from", Honoured(CORPUS)),
    ("nodes[agent_loop].max_steps", Honoured(CORPUS)),
    ("nodes[agent_loop].max_tokens", Honoured(CORPUS)),
    ("nodes[agent_loop].tools", Honoured(CORPUS)),
    ("nodes[call].input_from", Honoured(CALL)),
    ("nodes[call].start", Honoured(WRAPPED)),
    ("nodes[call].workflow", Honoured(CALL)),
    ("nodes[call_mcp_tool].args_from", Honoured(CORPUS)),
    ("nodes[call_mcp_tool].server", Honoured(CORPUS)),
    ("nodes[call_mcp_tool].tool", Honoured(CORPUS)),
    ("nodes[condition].expr", Honoured(CORPUS)),
    ("nodes[create_dir].path_from", Honoured(WRAPPED)),
    ("nodes[diff_compute].left_from", Honoured(CORPUS)),
    ("nodes[diff_compute].right_from", Honoured(CORPUS)),
    ("nodes[fail].reason", Honoured(CORPUS)),
    ("nodes[http_request].body_from", Honoured(KEYSFX)),
    ("nodes[http_request].headers", Honoured(EFFECTS)),
    ("nodes[http_request].method", Honoured(EFFECTS)),
    ("nodes[http_request].url_from", Honoured(EFFECTS)),
    ("nodes[json_select].input_from", Honoured(CORPUS)),
    ("nodes[json_select].path", Honoured(CORPUS)),
    ("nodes[llm_infer].backend", Honoured(LLMSOCK)),
    ("nodes[llm_infer].input_from", Honoured(CORPUS)),
    ("nodes[llm_infer].output_repairs", Honoured(LLMSOCK)),
    ("nodes[llm_infer].output_schema", Honoured(LLMSOCK)),
    ("nodes[llm_infer].prompt", Honoured(LLMSOCK)),
    ("nodes[map].items_from", Honoured(MAP)),
    ("nodes[map].max_concurrent", Honoured(MAP)),
    ("nodes[map].max_items", Honoured(MAP)),
    ("nodes[map].start", Honoured(WRAPPED)),
    ("nodes[map].workflow", Honoured(MAP)),
    ("nodes[parallel].branches", Honoured(PARALLEL)),
    ("nodes[parallel].branches[].input_from", Honoured(PARALLEL)),
    ("nodes[parallel].branches[].start", Honoured(WRAPPED)),
    ("nodes[parallel].branches[].workflow", Honoured(PARALLEL)),
    ("nodes[parse_json].input_from", Honoured(CORPUS)),
    ("nodes[pause_for_approval].reason", Honoured(DURABLE)),
    ("nodes[read_env].key", Honoured(HELLO)),
    ("nodes[read_file].path_from", Honoured(WRAPPED)),
    ("nodes[read_mcp_resource].resource_from", Honoured(CORPUS)),
    ("nodes[read_mcp_resource].server", Honoured(CORPUS)),
    ("nodes[respond].body_template", Honoured(ROUTES)),
    ("nodes[respond].content_type", Honoured(ROUTES)),
    ("nodes[respond].input_from", Honoured(AUTHKEYS)),
    ("nodes[respond].status", Honoured(ROUTES)),
    ("nodes[rust].handler", Honoured(HANDLERS)),
    ("nodes[rust].input_from", Honoured(HANDLERS)),
    ("nodes[shell_run].args_from", Honoured(ROUTES)),
    ("nodes[shell_run].command", Honoured(ROUTES)),
    ("nodes[shell_run].timeout_secs", Honoured(ROUTES)),
    ("nodes[switch].expr", Honoured(CORPUS)),
    ("nodes[template_render].input_from", Honoured(HELLO)),
    ("nodes[template_render].template", Honoured(HELLO)),
    ("nodes[write_file].content_from", Honoured(HELLO)),
    ("nodes[write_file].path_from", Honoured(HELLO)),
    ("policy", Honoured(HELLO)),
    ("policy.env", Honoured(HELLO)),
    ("policy.env.read_keys", Honoured(HELLO)),
    ("policy.fs", Honoured(HELLO)),
    ("policy.fs.delete", Diagnosed(Code::KeyHasNoEffect)),
    ("policy.fs.list", Diagnosed(Code::KeyHasNoEffect)),
    ("policy.fs.read", Honoured(CORPUS)),
    ("policy.fs.write", Honoured(HELLO)),
    ("policy.http", Honoured(URLPOL)),
    ("policy.http.methods", Honoured(URLPOL)),
    ("policy.http.urls", Honoured(URLPOL)),
    ("policy.mcp", Honoured(MCPREGO)),
    ("policy.mcp.resources", Honoured(MCPNARROW)),
    ("policy.mcp.servers", Honoured(MCPEMPTY)),
    ("policy.mcp.tools", Honoured(MCPNARROW)),
    ("policy.rego", Honoured(REGO)),
    ("policy.rego.data", Honoured(REGOFILE)),
    ("policy.rego.file", Honoured(REGOFILE)),
    ("policy.rego.inline", Honoured(REGO)),
    ("policy.rego.query", Honoured(REGOFILE)),
    ("policy.shell", Honoured(ROUTES)),
    ("policy.shell.commands", Honoured(ROUTES)),
    ("sandbox", Honoured(SANDBOX)),
    ("sandbox.mode", Honoured(SANDBOX)),
    ("secrets", Honoured(EFFECTS)),
    ("secrets[].name", Honoured(EFFECTS)),
    ("secrets[].source", Honoured(EFFECTS)),
    ("secrets[command].argv", Honoured(SECRETCMD)),
    ("secrets[env].var", Honoured(EFFECTS)),
    ("secrets[file].path", Honoured(LLMREM)),
    ("secrets[file].trim", Honoured(LLMREM)),
    ("secrets[oauth2].auth_style", Honoured(OAUTH2)),
    ("secrets[oauth2].client_id_env", Honoured(OAUTH2)),
    ("secrets[oauth2].client_secret_env", Honoured(OAUTH2)),
    ("secrets[oauth2].extra_params", Honoured(OAUTH2)),
    ("secrets[oauth2].scopes", Honoured(OAUTH2)),
    ("secrets[oauth2].skew_secs", Honoured(OAUTHSKEW)),
    ("secrets[oauth2].token_url", Honoured(OAUTH2)),
    ("server", Honoured(AUTH)),
    ("server.tls", Honoured(AUTH)),
    ("server.tls.cert_file", Honoured(AUTH)),
    ("server.tls.client_auth", Honoured(AUTH)),
    ("server.tls.client_auth.ca_file", Honoured(AUTH)),
    ("server.tls.client_auth.mode", Honoured(AUTH)),
    ("server.tls.key_file", Honoured(AUTH)),
    ("signing", Honoured(SIGNED)),
    (
        "signing.algorithm",
        Diagnosed(Code::SigningAlgorithmUnsupported),
    ),
    ("signing.public_key_file", Honoured(SIGNED)),
    ("signing.public_key_pem", Honoured(SIGNPEM)),
    ("signing.required", Honoured(SIGNED)),
    ("start_nodes", Honoured(HELLO)),
    ("start_nodes[].entry_node", Honoured(HELLO)),
    ("start_nodes[].name", Honoured(HELLO)),
    ("start_nodes[].source", Honoured(HELLO)),
    ("triggers", Honoured(POLLER)),
    ("triggers[].type", Honoured(POLLER)),
    ("triggers[cron].schedule", Honoured(TRIGGERS)),
    ("triggers[cron].start_node", Honoured(TRIGGERS)),
    ("triggers[fs_watch].debounce_ms", Honoured(TRIGGERS)),
    ("triggers[fs_watch].events", Honoured(TRIGGERS)),
    ("triggers[fs_watch].path", Honoured(TRIGGERS)),
    ("triggers[fs_watch].recursive", Honoured(TRIGGERS)),
    ("triggers[fs_watch].start_node", Honoured(TRIGGERS)),
    (
        "triggers[internal.event].name",
        Diagnosed(Code::KeyHasNoEffect),
    ),
    (
        "triggers[internal.event].start_node",
        Diagnosed(Code::KeyHasNoEffect),
    ),
    ("triggers[interval].every", Honoured(TRIGGERS)),
    ("triggers[interval].start_node", Honoured(TRIGGERS)),
    ("triggers[mcp.resource.created].resource", Honoured(MCPTRIG)),
    ("triggers[mcp.resource.created].server", Honoured(MCPTRIG)),
    (
        "triggers[mcp.resource.created].start_node",
        Honoured(MCPTRIG),
    ),
    ("triggers[mcp.resource.updated].resource", Honoured(MCPTRIG)),
    ("triggers[mcp.resource.updated].server", Honoured(MCPTRIG)),
    (
        "triggers[mcp.resource.updated].start_node",
        Honoured(MCPTRIG),
    ),
    ("workflows", Honoured(WRAPPED)),
];

/// The registry entry for `path`.
pub fn status(path: &str) -> Option<KeyStatus> {
    KEYS.iter().find(|(k, _)| *k == path).map(|(_, s)| *s)
}
