//! `agentd` — the command-line front end of the compiler.
//!
//! Thin by design: each subcommand parses its flags, calls the library, renders the
//! diagnostics it gets back and picks an exit code. Exit codes are part of the
//! interface (docs/cli.md).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod cmd;

/// Exit code: everything checked out.
pub const EXIT_OK: u8 = 0;
/// Exit code: the workflow has errors (or warnings under `--deny-warnings`).
pub const EXIT_INVALID: u8 = 1;
/// Exit code: bad command line, or a file could not be read or written.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: cargo failed to compile the generated crate.
pub const EXIT_CARGO: u8 = 3;
/// Exit code: a workflow file is unsigned (when signing is required) or wrongly signed.
pub const EXIT_SIGNATURE: u8 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "agentd",
    version,
    about = "Compile agent workflows (dialect 1 TOML) into specialised binaries",
    after_help = "Exit codes:\n  0  success (the workflow is valid)\n  1  the workflow has errors (or warnings with --deny-warnings)\n  2  usage error, or a file could not be read or written\n  3  cargo failed to compile the generated crate (build, test)\n  4  a workflow file is wrongly signed, or unsigned when signing is required (check, build)\n\nSee docs/cli.md for details, and `agentd explain CODE` for any diagnostic code."
)]
struct Cli {
    /// When to use colour in human-readable output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and validate workflows (and every child workflow they call) without building.
    Check(CheckArgs),
    /// Explain a diagnostic code, with a minimal example.
    Explain {
        /// The code, e.g. `dangling_edge`. Omit to list every code.
        code: Option<String>,
    },
    /// Validate a workflow and compile it into a standalone binary.
    Build(Box<BuildArgs>),
    /// Build a workflow (cached) and run it; `--watch` rebuilds and reruns on every
    /// change of the workflow or a child.
    Run(RunArgs),
    /// Print the Rust code `agentd build` would compile for a workflow.
    Emit(EmitArgs),
    /// Run conformance scenarios and fixtures (compiled into one harness binary).
    Test(TestArgs),
    /// Print the JSON Schema (2020-12) of a workflow file, for editors (taplo).
    Schema,
    /// Draw a workflow's graph: Graphviz dot, Mermaid, or SVG (rendered in-process).
    Graph {
        /// The workflow file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Run the language server (stdio JSON-RPC) for editors: diagnostics, hover,
    /// definition, references, completion and rename.
    Lsp {
        /// Accept custom Rust nodes (`type = "rust"`), as `check --allow-rust-nodes`.
        #[arg(long)]
        allow_rust_nodes: bool,
    },
    /// Create a new workflow project: workflow, test scenarios, README and CI file.
    Init {
        /// The project directory (created; must be empty if it exists).
        dir: PathBuf,
        /// The starting point: hello, webhook, llm-classifier, approval or map.
        #[arg(long, short, default_value = "hello", value_parser = clap::builder::PossibleValuesParser::new(agentd_compiler::frontend::init::names()))]
        template: String,
    },
    /// Print a shell completion script (source it, or install it where your shell
    /// looks for completions).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the agentd(1) man page, or write one page per command into a directory.
    Man {
        /// Write agentd.1 and agentd-COMMAND.1 here instead of printing agentd.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Generate an Ed25519 key pair: NAME (PKCS#8 PEM, mode 0600) and NAME.pub (SPKI PEM).
    Keygen {
        /// Where to write the private key; the public key goes to NAME.pub.
        #[arg(short, long, value_name = "NAME")]
        output: PathBuf,
        /// Replace an existing key pair.
        #[arg(long)]
        force: bool,
    },
    /// Sign a workflow file: writes FILE.sig (base64 of the Ed25519 signature).
    Sign {
        /// The file to sign (its exact bytes are signed).
        file: PathBuf,
        /// The private key (PKCS#8 PEM).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Check FILE.sig against FILE, or a provenance statement with --provenance
    /// (exit 0 valid, 1 missing or invalid, 2 unusable key).
    Verify {
        /// The signed file.
        #[arg(required_unless_present = "provenance", conflicts_with = "provenance")]
        file: Option<PathBuf>,
        /// The public key (SPKI PEM). Optional with --provenance for an unsigned statement.
        #[arg(
            long = "pub",
            value_name = "KEY",
            required_unless_present = "provenance"
        )]
        public: Option<PathBuf>,
        /// A provenance statement or DSSE envelope from `agentd build --provenance-out`.
        #[arg(long, value_name = "FILE")]
        provenance: Option<PathBuf>,
        /// With --provenance: the binary must be one of the statement's subjects.
        #[arg(long, value_name = "FILE", requires = "provenance")]
        binary: Option<PathBuf>,
        /// With --provenance: the image (OCI archive) must be one of its subjects.
        #[arg(long, value_name = "FILE", requires = "provenance")]
        image: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Workflow files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format for diagnostics.
    #[arg(long, value_enum, default_value_t = MessageFormat::Human)]
    message_format: MessageFormat,
    /// Treat warnings as errors.
    #[arg(long)]
    deny_warnings: bool,
    /// Accept custom Rust nodes (`type = "rust"`), as `agentd!` and `build --handlers` do.
    #[arg(long)]
    allow_rust_nodes: bool,
    /// As for `build`: implies --allow-rust-nodes and checks that PATH is a usable
    /// handler crate.
    #[arg(long, value_name = "PATH")]
    handlers: Option<PathBuf>,
    /// Print, for each valid workflow, the Landlock and seccomp rules its binary
    /// will apply (on stdout), so they can be reviewed in CI.
    #[arg(long)]
    explain_sandbox: bool,
    #[command(flatten)]
    signing: cmd::signing::SigningArgs,
}

#[derive(Debug, clap::Args)]
struct EmitArgs {
    /// The workflow file.
    file: PathBuf,
    /// Accept custom Rust nodes and bind them to `agentd_handlers::<handler>`, as
    /// `build --handlers` does.
    #[arg(long)]
    allow_rust_nodes: bool,
    /// As for `build` (implies --allow-rust-nodes).
    #[arg(long, value_name = "PATH")]
    handlers: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// The workflow file.
    file: PathBuf,
    /// Where to write the binary (default: the workflow's name, in the current directory).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The agentd-runtime crate to build against.
    #[arg(long, env = "AGENTD_RUNTIME_PATH")]
    runtime: Option<PathBuf>,
    /// Shared cache for generated crates and their build artifacts.
    #[arg(long, env = "AGENTD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Build the smallest binary (fat LTO, opt-level "s"); slower to build.
    #[arg(long)]
    release_lto: bool,
    /// Fleet mode: compile in the Redis client so replicas given the same
    /// `--state-url` share idempotency keys, rate limits and cron/interval ticks.
    #[arg(long)]
    fleet: bool,
    /// Link dynamically instead of the default static binary.
    #[arg(long)]
    dynamic: bool,
    /// Show cargo's progress (default: when stderr is a terminal).
    #[arg(long, conflicts_with = "quiet")]
    progress: bool,
    /// Never show cargo's progress.
    #[arg(long, short)]
    quiet: bool,
    /// A library crate (its Cargo.toml directory) whose root-level public functions
    /// implement the workflow's custom Rust nodes: `handler = "x"` calls
    /// `agentd_handlers::x`. Allows `type = "rust"` nodes.
    #[arg(long, value_name = "PATH")]
    handlers: Option<PathBuf>,
    /// Let the binary replace its baked `[policy]` at run time with `--policy FILE` /
    /// `AGENTD_POLICY` (signed when signing is required). Without it the binary
    /// refuses those flags.
    #[arg(long)]
    policy_overrides: bool,
    #[command(flatten)]
    signing: cmd::signing::SigningArgs,
    #[command(flatten)]
    ship: ShipArgs,
}

/// What `agentd build` ships besides the binary (docs/ci.md).
#[derive(Debug, clap::Args)]
struct ShipArgs {
    /// Also write an OCI image (image-layout tar, FROM scratch) running the binary.
    #[arg(long, value_name = "FILE", help_heading = "Shipping")]
    image: Option<PathBuf>,
    /// The image's NAME[:TAG] (default: the binary's name, tag `latest`).
    #[arg(
        long,
        value_name = "NAME:TAG",
        requires = "image",
        help_heading = "Shipping"
    )]
    tag: Option<String>,
    /// PEM CA bundle the image trusts for outgoing TLS (default: this machine's system
    /// bundle); bundled only when the workflow makes TLS calls.
    #[arg(
        long,
        value_name = "FILE",
        requires = "image",
        help_heading = "Shipping"
    )]
    ca_bundle: Option<PathBuf>,
    /// Also write a CycloneDX 1.5 JSON SBOM of the crates linked into the binary.
    #[arg(long, value_name = "FILE", help_heading = "Shipping")]
    sbom: Option<PathBuf>,
    /// Also write an in-toto / SLSA v1 provenance statement for the binary (and image).
    #[arg(long, value_name = "FILE", help_heading = "Shipping")]
    provenance_out: Option<PathBuf>,
    /// Sign the provenance statement (DSSE envelope) with this Ed25519 key (PKCS#8 PEM).
    #[arg(
        long,
        value_name = "KEY",
        requires = "provenance_out",
        help_heading = "Shipping"
    )]
    key: Option<PathBuf>,
    /// The builder recorded in the provenance (a URI, e.g. your CI workflow's URL).
    #[arg(
        long,
        value_name = "URI",
        env = "AGENTD_BUILDER_ID",
        help_heading = "Shipping"
    )]
    builder_id: Option<String>,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The workflow file.
    file: PathBuf,
    /// Rebuild and rerun whenever the workflow or a child workflow changes.
    #[arg(long)]
    watch: bool,
    /// The agentd-runtime crate to build against.
    #[arg(long, env = "AGENTD_RUNTIME_PATH")]
    runtime: Option<PathBuf>,
    /// Shared cache for generated crates, their build artifacts and `run`'s binaries.
    #[arg(long, env = "AGENTD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Link dynamically instead of the default static binary.
    #[arg(long)]
    dynamic: bool,
    /// Never show cargo's progress.
    #[arg(long, short)]
    quiet: bool,
    /// As for `build`: bind custom Rust nodes from this handler crate.
    #[arg(long, value_name = "PATH")]
    handlers: Option<PathBuf>,
    /// As for `build`: the binary accepts `--policy FILE`.
    #[arg(long)]
    policy_overrides: bool,
    #[command(flatten)]
    signing: cmd::signing::SigningArgs,
    /// Arguments for the workflow's binary (after `--`), e.g. `-- --input '{"x": 1}'`.
    #[arg(last = true)]
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// Scenario files, and directories to search for scenarios (`*.toml` with a
    /// `[workflow]` table) and fixtures (`<dir>/{workflow,fixture}.toml`).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The agentd-runtime crate to build against.
    #[arg(long, env = "AGENTD_RUNTIME_PATH")]
    runtime: Option<PathBuf>,
    /// Shared cache for generated crates and their build artifacts.
    #[arg(long, env = "AGENTD_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Show cargo's progress while building the harness.
    #[arg(long)]
    progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MessageFormat {
    /// rustc-style text on stderr.
    Human,
    /// One JSON object per diagnostic on stdout.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    /// Graphviz dot.
    Dot,
    /// A Mermaid flowchart (for Markdown).
    Mermaid,
    /// SVG, laid out and drawn in-process (no Graphviz needed).
    Svg,
}

impl From<GraphFormat> for agentd_compiler::frontend::graph::Format {
    fn from(f: GraphFormat) -> Self {
        match f {
            GraphFormat::Dot => Self::Dot,
            GraphFormat::Mermaid => Self::Mermaid,
            GraphFormat::Svg => Self::Svg,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn enabled_for_stderr(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout with exit 0 and errors with exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let color = cli.color.enabled_for_stderr();
    let code = match cli.command {
        Command::Check(args) => cmd::check::run(
            &args.files,
            cmd::check::Options {
                json: args.message_format == MessageFormat::Json,
                deny_warnings: args.deny_warnings,
                allow_rust_nodes: args.allow_rust_nodes,
                handlers: args.handlers,
                explain_sandbox: args.explain_sandbox,
                color,
                signing: args.signing.options(),
            },
        ),
        Command::Explain { code } => cmd::explain::run(code.as_deref()),
        Command::Schema => cmd::schema::run(),
        Command::Graph {
            file,
            format,
            output,
        } => cmd::graph::run(&file, format.into(), output.as_deref(), color),
        Command::Test(args) => cmd::test::run(
            &args.paths,
            cmd::test::Options {
                runtime: args.runtime,
                cache_dir: args.cache_dir,
                progress: args.progress.then_some(true),
                color,
            },
        ),
        Command::Emit(args) => cmd::emit::run(
            &args.file,
            cmd::emit::Options {
                allow_rust_nodes: args.allow_rust_nodes,
                handlers: args.handlers,
                color,
            },
        ),
        Command::Run(args) => cmd::run::run(
            &args.file,
            cmd::run::Options {
                build: cmd::build::Options {
                    output: None,
                    runtime: args.runtime,
                    cache_dir: args.cache_dir,
                    release_lto: false,
                    fleet: false,
                    dynamic: args.dynamic,
                    handlers: args.handlers,
                    policy_overrides: args.policy_overrides,
                    progress: args.quiet.then_some(false),
                    color,
                    signing: args.signing.options(),
                    ship: agentd_compiler::ship::ShipOptions::default(),
                },
                watch: args.watch,
                args: args.args,
            },
        ),
        Command::Build(args) => cmd::build::run(
            &args.file,
            cmd::build::Options {
                output: args.output,
                runtime: args.runtime,
                cache_dir: args.cache_dir,
                release_lto: args.release_lto,
                fleet: args.fleet,
                dynamic: args.dynamic,
                handlers: args.handlers,
                policy_overrides: args.policy_overrides,
                progress: if args.progress {
                    Some(true)
                } else if args.quiet {
                    Some(false)
                } else {
                    None
                },
                color,
                signing: args.signing.options(),
                ship: agentd_compiler::ship::ShipOptions {
                    image: args.ship.image,
                    tag: args.ship.tag,
                    ca_bundle: args.ship.ca_bundle,
                    sbom: args.ship.sbom,
                    provenance: args.ship.provenance_out,
                    key: args.ship.key,
                    builder_id: args.ship.builder_id,
                },
            },
        ),
        Command::Lsp { allow_rust_nodes } => {
            cmd::lsp::run(&agentd_compiler::frontend::lsp::Options { allow_rust_nodes })
        }
        Command::Init { dir, template } => cmd::init::run(&dir, &template),
        Command::Completions { shell } => cmd::completions::completions(match shell {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        }),
        Command::Man { dir } => cmd::completions::man(dir.as_deref()),
        Command::Keygen { output, force } => cmd::signing::keygen(&output, force),
        Command::Sign { file, key } => cmd::signing::sign(&file, &key),
        Command::Verify {
            file,
            public,
            provenance,
            binary,
            image,
        } => match (provenance, file, public) {
            (Some(statement), _, public) => cmd::ship::verify(
                &statement,
                public.as_deref(),
                binary.as_deref(),
                image.as_deref(),
            ),
            (None, Some(file), Some(public)) => cmd::signing::verify(&file, &public),
            // clap requires FILE and --pub without --provenance.
            _ => EXIT_USAGE,
        },
    };
    ExitCode::from(code)
}
