//! The registry of diagnostic codes: what each one means, for `agentd explain CODE`.
//!
//! A code is the stable, machine-readable name of one kind of problem. The 24 codes
//! marked `dialect1` are the ones the agentd 1.3.0 validator reports, with the same
//! names and trigger conditions (docs/dialect.md §14); the rest are ours
//! (parse and load stages, and the extra checks of docs/dialect.md §15).
//!
//! One table (the `registry!` macro) declares every code with its stage, severity and
//! summary; it generates the [`Code`] enum and [`CODES`]. Each code's explanation is
//! `agentd-compiler/codes/<code>.md` and its example `codes/<code>.toml` (rustc's
//! layout), embedded at build time. Every example is a complete workflow file (or,
//! for the few codes that cannot be shown as TOML, a comment saying how the problem
//! arises). The fix is given in a comment.
//!
//! Diagnostics are built from a [`Code`] (`Diagnostic::new(Code::DanglingEdge, ..)`),
//! so an unregistered code does not compile, and the severity is always the one
//! registered here. Tests check that the `codes/` folder holds exactly the files of
//! the registered codes and that every example runnable as one file triggers its
//! code and no other error.

use serde::Serialize;

/// How bad a diagnostic is. Warnings never fail `check` unless `--deny-warnings`.
/// Defined beside the registry, which gives every code its severity; the
/// diagnostics module re-exports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// The pipeline stage that reports a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading and parsing one file (`parse`).
    Parse,
    /// Resolving child workflows of `call` / `parallel` / `map` (`load`).
    Load,
    /// Checking one parsed workflow (`validate`).
    Validate,
    /// Checks only the `agentd!` macro can make (handler bindings; `embed`).
    Embed,
    /// Verifying the signatures of every file of a program (`signing`).
    Signing,
}

/// Everything `agentd explain` knows about a code.
#[derive(Debug)]
pub struct CodeInfo {
    pub code: &'static str,
    pub severity: Severity,
    pub stage: Stage,
    /// True for the codes the dialect-1 validator itself reports.
    pub dialect1: bool,
    /// One line.
    pub summary: &'static str,
    /// A paragraph: what triggers it, why it matters, how to fix it.
    pub explanation: &'static str,
    /// A minimal workflow that triggers the code, with the fix in a comment.
    pub example: &'static str,
}

/// Look up a code by name.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code == code)
}

use Severity::{Error, Warning};
use Stage::{Embed, Load, Parse, Signing, Validate};

/// Declares the registry from one table: the [`Code`] enum (one variant per code,
/// its name and severity) and [`CODES`], whose explanations and examples are the
/// files `codes/<code>.md` and `codes/<code>.toml`, embedded so `agentd explain`
/// needs no files at run time.
macro_rules! registry {
    ($( $variant:ident = $name:literal, $stage:ident, $severity:ident, $dialect1:literal,
        $summary:literal; )*) => {
        /// A diagnostic code: the stable name of one kind of problem.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( #[doc = $summary] $variant, )*
        }

        impl Code {
            /// Every code, in registry order (the order of [`CODES`]).
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code's stable name, e.g. `dangling_edge`.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// The severity every diagnostic with this code has.
            #[must_use]
            pub const fn severity(self) -> Severity {
                match self { $(Code::$variant => $severity,)* }
            }

            /// The code named `name`, if there is one.
            #[must_use]
            pub fn from_name(name: &str) -> Option<Code> {
                match name { $($name => Some(Code::$variant),)* _ => None }
            }
        }

        /// Every code, grouped by stage; validate-stage codes in emission order.
        pub static CODES: &[CodeInfo] = &[
            $( CodeInfo {
                code: $name,
                severity: $severity,
                stage: $stage,
                dialect1: $dialect1,
                summary: $summary,
                explanation: include_str!(concat!("../codes/", $name, ".md")).trim_ascii_end(),
                example: include_str!(concat!("../codes/", $name, ".toml")),
            }, )*
        ];
    };
}

impl Code {
    /// Everything `agentd explain` knows about the code.
    #[must_use]
    pub fn info(self) -> &'static CodeInfo {
        &CODES[self as usize]
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code serialises as its stable name, so JSON output and the LSP carry the same
/// strings `agentd explain` takes.
impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

registry! {
    // ---------------------------------------------------------------- parse stage
    IoError = "io_error", Parse, Error, false,
        "the workflow file cannot be read";
    FileTooLarge = "file_too_large", Parse, Error, false,
        "the workflow file is larger than the 8 MiB limit";
    NotUtf8 = "not_utf8", Parse, Error, false,
        "the workflow file is not valid UTF-8";
    TomlSyntax = "toml_syntax", Parse, Error, false,
        "the file is not valid TOML";
    UnknownField = "unknown_field", Parse, Error, false,
        "a key that this table does not accept";
    UnknownVariant = "unknown_variant", Parse, Error, false,
        "a value that is not one of the allowed names";
    MissingField = "missing_field", Parse, Error, false,
        "a required key is missing";
    InvalidType = "invalid_type", Parse, Error, false,
        "a value has the wrong TOML type";
    InvalidValue = "invalid_value", Parse, Error, false,
        "a value of the right type is out of range";
    SchemaError = "schema_error", Parse, Error, false,
        "the document does not fit the workflow schema";
    WorkflowCount = "workflow_count", Parse, Error, false,
        "a wrapped document must hold exactly one [[workflows]] entry";
    // ----------------------------------------------------------------- load stage
    ChildWorkflowMissing = "child_workflow_missing", Load, Error, false,
        "a child workflow file of call/parallel/map does not exist";
    ChildWorkflowInvalid = "child_workflow_invalid", Load, Error, false,
        "a child workflow has errors";
    ChildWorkflowCycle = "child_workflow_cycle", Load, Error, false,
        "child workflows call each other in a cycle";
    ChildWorkflowTooDeep = "child_workflow_too_deep", Load, Error, false,
        "child workflows are nested more than 8 levels deep";
    UnknownChildStart = "unknown_child_start", Load, Error, false,
        "a child workflow has no such start node (or none at all)";
    // ------------------------------------------------- validate stage: dialect 1
    DupNodeId = "dup_node_id", Validate, Error, true,
        "a node id is declared more than once";
    DupStartName = "dup_start_name", Validate, Error, true,
        "a start node name is declared more than once";
    DupHttpRoute = "dup_http_route", Validate, Error, true,
        "two HTTP routes have the same method and path";
    UnknownHttpStartNode = "unknown_http_start_node", Validate, Error, true,
        "an HTTP route points at an undeclared start node";
    UnknownTriggerStartNode = "unknown_trigger_start_node", Validate, Error, true,
        "a trigger points at an undeclared start node";
    UnknownStartEntryNode = "unknown_start_entry_node", Validate, Error, true,
        "a start node's entry_node is not a declared node id";
    DanglingEdge = "dangling_edge", Validate, Error, true,
        "an edge's from or to is not a declared node id";
    UnknownMcpServer = "unknown_mcp_server", Validate, Error, true,
        "an MCP node names a server that is not in [[mcp_servers]]";
    AmbiguousMcpServer = "ambiguous_mcp_server", Validate, Error, true,
        "an MCP node has no server while several are declared";
    AgentLoopStepsOutOfRange = "agent_loop_steps_out_of_range", Validate, Error, true,
        "agent_loop max_steps is 0 or greater than 64";
    AgentLoopMissingInstructions = "agent_loop_missing_instructions", Validate, Error, true,
        "agent_loop has neither instructions nor instructions_from";
    AgentLoopNoTools = "agent_loop_no_tools", Validate, Error, true,
        "agent_loop declares no tools";
    AgentLoopUnknownTool = "agent_loop_unknown_tool", Validate, Error, true,
        "agent_loop lists a tool that is not a loop tool";
    RespondStatusOutOfRange = "respond_status_out_of_range", Validate, Error, true,
        "respond status is outside 100..=599";
    RespondEmptyContentType = "respond_empty_content_type", Validate, Error, true,
        "respond content_type is blank";
    MapZeroMaxItems = "map_zero_max_items", Validate, Error, true,
        "map max_items is 0";
    MapZeroConcurrency = "map_zero_concurrency", Validate, Error, true,
        "map max_concurrent is 0";
    MapEmptyWorkflow = "map_empty_workflow", Validate, Error, true,
        "map workflow path is blank";
    HttpHeaderBadName = "http_header_bad_name", Validate, Error, true,
        "an http_request header name is empty or has invalid characters";
    HttpHeaderCrlf = "http_header_crlf", Validate, Error, true,
        "an http_request header value contains CR or LF";
    HttpHeaderBadPlaceholder = "http_header_bad_placeholder", Validate, Error, true,
        "an http_request header uses a placeholder other than {{secret:NAME}}";
    Cycle = "cycle", Validate, Error, true,
        "the graph has a cycle that is not a bounded loop edge";
    AmbiguousStartEntry = "ambiguous_start_entry", Validate, Error, true,
        "a start node has no entry_node and the graph has no single root";
    UnreachableNode = "unreachable_node", Validate, Error, true,
        "a node cannot be reached from any start node";
    // ------------------------------------------------ validate stage: our checks
    BadAuthRef = "bad_auth_ref", Validate, Error, false,
        "a route's auth string is not a valid auth reference";
    UnknownAuthBinding = "unknown_auth_binding", Validate, Error, false,
        "a route's auth reference names a binding that is not declared";
    MtlsWithoutClientAuth = "mtls_without_client_auth", Validate, Error, false,
        "a route requires mtls but TLS client authentication is not configured";
    InvalidCron = "invalid_cron", Validate, Error, false,
        "a cron trigger's schedule does not parse";
    InvalidInterval = "invalid_interval", Validate, Error, false,
        "an interval trigger's `every` is not a duration";
    InvalidFsWatchDebounce = "invalid_fs_watch_debounce", Validate, Error, false,
        "an fs_watch trigger's debounce_ms is above 600000 (10 minutes)";
    InvalidFsWatchEvent = "invalid_fs_watch_event", Validate, Error, false,
        "an fs_watch trigger lists an unknown event kind";
    UnknownTriggerMcpServer = "unknown_trigger_mcp_server", Validate, Error, false,
        "an MCP resource trigger names a server that is not declared";
    ReservedBackendName = "reserved_backend_name", Validate, Error, false,
        "an intelligence backend is declared with the reserved name `default`";
    DupBackendName = "dup_backend_name", Validate, Error, false,
        "two intelligence backends have the same name";
    IncompleteBackend = "incomplete_backend", Validate, Error, false,
        "an intelligence backend lacks a field its provider requires";
    UnknownBackend = "unknown_backend", Validate, Error, false,
        "an llm_infer or agent_loop node uses a backend that is not declared";
    OutputSchemaUnreadable = "output_schema_unreadable", Validate, Warning, false,
        "llm_infer output_schema names a file that cannot be read (or is not JSON)";
    AmbiguousSuccessor = "ambiguous_successor", Validate, Error, false,
        "two out-edges of a node match the same branch";
    UnlabelledSourceWhen = "unlabelled_source_when", Validate, Warning, false,
        "a `when` edge leaves a node kind that never emits a branch label";
    ErrorEdgeNeverTaken = "error_edge_never_taken", Validate, Warning, false,
        "a `when = \"error\"` edge leaves a kind that has no error branch";
    ExhaustedEdgeNotAgentLoop = "exhausted_edge_not_agent_loop", Validate, Warning, false,
        "a `when = \"exhausted\"` edge leaves a node that is not an agent_loop";
    LabelNeverEmitted = "label_never_emitted", Validate, Warning, false,
        "a `when` label is not one the source kind can emit";
    ConditionMissingBranch = "condition_missing_branch", Validate, Warning, false,
        "a condition lacks a `true` or a `false` edge";
    ErrorBranchUnhandled = "error_branch_unhandled", Validate, Warning, false,
        "a node that fails by taking its `error` branch has no `error` edge";
    RespondJsonUnescaped = "respond_json_unescaped", Validate, Warning, false,
        "a JSON `respond` body inserts request values with raw placeholders";
    NoPolicy = "no_policy", Validate, Warning, false,
        "the workflow has no [policy] block, so everything is allowed";
    RegoSourceConflict = "rego_source_conflict", Validate, Error, false,
        "[policy.rego] sets both `inline` and `file`";
    RegoSourceMissing = "rego_source_missing", Validate, Error, false,
        "[policy.rego] has neither `inline` nor `file`";
    RegoFileUnreadable = "rego_file_unreadable", Validate, Error, false,
        "the [policy.rego] `file` cannot be read at build time";
    RegoDataInvalid = "rego_data_invalid", Validate, Error, false,
        "[policy.rego] `data` is not a table";
    RegoSyntaxError = "rego_syntax_error", Validate, Error, false,
        "the Rego policy does not compile";
    RegoQueryInvalid = "rego_query_invalid", Validate, Error, false,
        "the [policy.rego] `query` does not parse";
    DupMcpServerName = "dup_mcp_server_name", Validate, Error, false,
        "two [[mcp_servers]] entries have the same name";
    InvalidMcpServer = "invalid_mcp_server", Validate, Error, false,
        "an [[mcp_servers]] entry that cannot work: no name, neither or both of `command` and `url`, a bad URL, headers on a stdio server, a zero timeout";
    // ------------------------------------------------ keys without effect, retry
    KeyHasNoEffect = "key_has_no_effect", Validate, Warning, false,
        "a key that is accepted but does nothing";
    InvalidRetry = "invalid_retry", Validate, Error, false,
        "`retry.jitter` is not a finite number of at least 0";
    RetryJitterClamped = "retry_jitter_clamped", Validate, Warning, false,
        "`retry.jitter` above 0.5, which the runtime clamps to 0.5";
    McpServerNotInPolicy = "mcp_server_not_in_policy", Validate, Warning, false,
        "under a [policy], an MCP server that `[policy.mcp] servers` does not list";
    McpUrlNotAllowed = "mcp_url_not_allowed", Validate, Error, false,
        "under a [policy], an [[mcp_servers]] `url` that [policy.http] does not allow";
    // ------------------------------------------- extension: custom Rust nodes
    RustNodeNotAllowed = "rust_node_not_allowed", Validate, Error, false,
        "a custom Rust node (`type = \"rust\"`) where strict dialect 1 is required";
    InvalidHandlerName = "invalid_handler_name", Validate, Error, false,
        "a Rust node's `handler` is not a Rust identifier";
    // ------------------------------------------------------- extension: secrets
    DupSecretName = "dup_secret_name", Validate, Error, false,
        "two [[secrets]] entries have the same name";
    InvalidMcpOauth = "invalid_mcp_oauth", Validate, Error, false,
        "[mcp_servers.oauth] on a stdio server, with a grant other than client_credentials, or an unknown token_auth";
    SecretCommandEmpty = "secret_command_empty", Validate, Error, false,
        "a `command` secret whose `argv` names no program";
    SecretOauth2BadUrl = "secret_oauth2_bad_url", Validate, Error, false,
        "an `oauth2` secret whose `token_url` is not an absolute http(s) URL";
    SecretOauth2UrlDenied = "secret_oauth2_url_denied", Validate, Error, false,
        "an `oauth2` secret whose `token_url` the workflow's [policy.http] does not allow";
    SecretOauth2AuthStyle = "secret_oauth2_auth_style", Validate, Error, false,
        "an `oauth2` secret with an `auth_style` other than \"body\" or \"basic\"";
    SecretOauth2ReservedParam = "secret_oauth2_reserved_param", Validate, Error, false,
        "`extra_params` of an `oauth2` secret sets a parameter the grant sends itself";
    SecretOauth2CredentialLoop = "secret_oauth2_credential_loop", Validate, Error, false,
        "an `oauth2` secret whose client id or secret is itself an `oauth2` token";
    SecretLiteralMaterial = "secret_literal_material", Validate, Error, false,
        "a secret value written into the workflow file";
    AuthLiteralSecret = "auth_literal_secret", Validate, Warning, false,
        "an auth binding holds literal tokens, credentials or an HMAC secret";
    HmacToleranceWithoutTimestamp = "hmac_tolerance_without_timestamp", Validate, Warning, false,
        "`tolerance_secs` is set but there is no `timestamp_header` to apply it to";
    OidcAlgorithmRejected = "oidc_algorithm_rejected", Validate, Error, false,
        "an OIDC binding allows `none`, a symmetric (HS*) or an unknown JWT algorithm";
    OidcJwksSource = "oidc_jwks_source", Validate, Error, false,
        "an OIDC binding sets neither or both of `jwks_json` and `jwks_file`";
    OidcJwksInvalid = "oidc_jwks_invalid", Validate, Error, false,
        "an inline `jwks_json` is not a usable public key set";
    OidcJwksFileUnreadable = "oidc_jwks_file_unreadable", Validate, Warning, false,
        "an OIDC `jwks_file` cannot be read or is not a key set at build time";
    TlsClientCaMissing = "tls_client_ca_missing", Validate, Error, false,
        "client certificates are requested but there is no `ca_file` to verify them";
    UnboundHandler = "unbound_handler", Embed, Error, false,
        "a Rust node's handler is not bound in agentd!";
    UnusedHandler = "unused_handler", Embed, Error, false,
        "agentd! binds a handler that no Rust node uses";
    // ------------------------------------------------------- extension: logging
    InvalidLogging = "invalid_logging", Validate, Error, false,
        "a [logging] value the runtime cannot use";
    InvalidOtel = "invalid_otel", Validate, Error, false,
        "[logging.otel] cannot be used by the OTLP exporter";
    ReservedRoute = "reserved_route", Validate, Error, false,
        "an HTTP route on a path the server answers itself (GET /healthz, GET /readyz, GET /metrics)";
    InvalidRoutePath = "invalid_route_path", Validate, Error, false,
        "an HTTP route path no request can match (no leading `/`, or a `?`, `#`, space or control character)";
    InvalidRateLimit = "invalid_rate_limit", Validate, Error, false,
        "a route's rate_limit could never work (capacity 0, per_second not a positive number)";
    InputSchemaInvalid = "input_schema_invalid", Validate, Error, false,
        "a route's input_schema is not a readable JSON Schema file";
    BudgetOutOfRange = "budget_out_of_range", Validate, Error, false,
        "a [budget] size in MiB is more bytes than fit in 64 bits";
    // -------------------------------------------------------------- signing stage
    SignatureMissing = "signature_missing", Signing, Error, false,
        "a workflow file has no `.sig` and signing is required";
    SignatureInvalid = "signature_invalid", Signing, Error, false,
        "a workflow file's signature does not match its bytes and the public key";
    SignatureMalformed = "signature_malformed", Signing, Error, false,
        "a `.sig` file is unreadable, not base64, or not 64 bytes";
    SignatureUnverified = "signature_unverified", Signing, Warning, false,
        "a `.sig` file exists but no public key is configured to check it";
    SigningKeyMissing = "signing_key_missing", Signing, Error, false,
        "signing is required but no public key is configured, or the key file is unreadable";
    SigningKeyInvalid = "signing_key_invalid", Signing, Error, false,
        "the public key is not an SPKI PEM Ed25519 key, or both key sources are set";
    SigningAlgorithmUnsupported = "signing_algorithm_unsupported", Signing, Error, false,
        "`[signing] algorithm` is not ed25519";
}

#[cfg(test)]
mod tests;
