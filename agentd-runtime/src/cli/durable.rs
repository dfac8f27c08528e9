//! The command line's durable-run flags: `--state-dir`, `--resume` (with
//! `--approve`/`--deny`), `--checkpoint-each-node`, `--resume-incomplete`,
//! `--list-checkpoints` and `--checkpoint-retention-days`
//! (docs/cli.md "The compiled binary" and "Checkpoints and resume";
//! docs/operations.md "Approval, resume and checkpoints").
//!
//! Owns checking those flags against each other, opening the state
//! directory, applying the retention rule at start, and printing what
//! listing and resuming produce, with the dialect's exit codes. The file
//! format and locking are [`crate::checkpoint`]'s; resuming itself is
//! [`Engine::resume`]'s.

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use crate::checkpoint::{
    Approval, CheckpointError, Checkpoints, DEFAULT_RETENTION_DAYS, Retention, StateDir,
};
use crate::engine::Engine;
use crate::workflow::WorkflowDef;

use super::{Args, EXIT_OK, EXIT_USAGE, StartError, emit, env_string, from_env, print_report};

/// The durable-run flags, after env twins are applied.
#[derive(Debug, Default)]
pub(super) struct DurableArgs {
    pub(super) state_dir: Option<String>,
    pub(super) resume: Option<String>,
    pub(super) approval: Approval,
    pub(super) each_node: bool,
    pub(super) resume_incomplete: bool,
    pub(super) retention: Retention,
    /// For the prune note.
    pub(super) retention_days: u64,
}

impl DurableArgs {
    /// Read the flags (blank env values count as unset).
    ///
    /// # Errors
    ///
    /// [`StartError::Usage`]: `--approve`/`--deny` without `--resume`, or a
    /// `--checkpoint-retention-days` that is not a whole number (the env
    /// twin falls back to the default instead, like the dialect's numbers).
    pub(super) fn from_args(matches: &super::Matches, args: &Args) -> Result<Self, StartError> {
        let resume = env_string(matches, "resume", args.resume.clone());
        if (args.approve || args.deny) && resume.is_none() {
            return Err(StartError::usage(
                "--approve and --deny need --resume RUN_ID",
            ));
        }
        let retention_days = match args.checkpoint_retention_days.as_deref() {
            None => DEFAULT_RETENTION_DAYS,
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(days) => days,
                Err(_) if from_env(matches, "checkpoint_retention_days") => DEFAULT_RETENTION_DAYS,
                Err(_) => {
                    return Err(StartError::Usage(format!(
                        "invalid value `{raw}` for --checkpoint-retention-days: expected whole days"
                    )));
                }
            },
        };
        Ok(Self {
            state_dir: env_string(matches, "state_dir", args.state_dir.clone()),
            resume,
            approval: if args.deny {
                Approval::Deny
            } else {
                Approval::Approve
            },
            each_node: args.checkpoint_each_node,
            resume_incomplete: args.resume_incomplete,
            retention: Retention::days(retention_days),
            retention_days,
        })
    }

    /// Whether this invocation resumes instead of starting a run (the start
    /// and trigger then come from the checkpoint).
    pub(super) fn resuming(&self) -> bool {
        self.resume.is_some() || self.resume_incomplete
    }
}

/// What a durable flag needs, for its usage error.
fn needs_store() -> &'static str {
    if cfg!(feature = "fleet") {
        "needs --state-dir or --state-url"
    } else {
        "needs --state-dir"
    }
}

/// `--list-checkpoints`: one line per checkpoint in the directory
/// (whatever its workflow) or, with `--state-url`, of this program in the
/// fleet's store; unreadable ones are named on stderr. Exit 0.
///
/// # Errors
///
/// Without a readable `--state-dir` or a reachable store (exit 2).
pub(super) fn list(
    state_dir: Option<&str>,
    fleet: Option<&dyn Checkpoints>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, StartError> {
    let listed = match (fleet, state_dir) {
        (Some(store), _) => store.list()?,
        (None, Some(path)) => StateDir::existing(path).and_then(|dir| dir.list())?,
        (None, None) => {
            return Err(StartError::Usage(format!(
                "--list-checkpoints {}",
                needs_store()
            )));
        }
    };
    for (run_id, loaded) in listed {
        match loaded {
            Ok(checkpoint) => {
                let line = checkpoint.list_line();
                emit(stdout, "the checkpoint list", format_args!("{line}\n"))?;
            }
            Err(e) => {
                let _ = writeln!(stderr, "agentd: skipping `{run_id}`: {e}");
            }
        }
    }
    Ok(EXIT_OK)
}

/// Check the flags and open the checkpoint store: the fleet's (`fleet`,
/// from `--state-url`) when there is one, else the state directory,
/// created if absent for a run, required to exist for a resume. A run or
/// `--resume-incomplete` then applies the retention rule to this
/// workflow's checkpoints in a directory (an explicit `--resume RUN_ID`
/// does not, so it never expires what it was asked to continue); in the
/// fleet's store checkpoints expire by themselves.
///
/// # Errors
///
/// [`StartError::Usage`] for a flag that needs `--state-dir`,
/// [`StartError::StateDir`] for a directory that cannot be opened (exit 2).
pub(super) fn open(
    def: &WorkflowDef,
    args: &DurableArgs,
    fleet: Option<Arc<dyn Checkpoints>>,
    stderr: &mut dyn Write,
) -> Result<Option<Arc<dyn Checkpoints>>, StartError> {
    if let Some(store) = fleet {
        return Ok(Some(store));
    }
    let Some(path) = args.state_dir.as_deref() else {
        let needs = if args.resume.is_some() {
            Some("--resume")
        } else if args.resume_incomplete {
            Some("--resume-incomplete")
        } else if args.each_node {
            Some("--checkpoint-each-node")
        } else {
            None
        };
        return match needs {
            Some(flag) => Err(StartError::Usage(format!("{flag} {}", needs_store()))),
            None => Ok(None),
        };
    };
    let opened = if args.resuming() {
        StateDir::existing(path)
    } else {
        StateDir::create(path)
    };
    let dir = opened?;
    if args.resume.is_none() {
        prune(def, &dir, args, stderr);
    }
    Ok(Some(Arc::new(dir)))
}

fn prune(def: &WorkflowDef, dir: &StateDir, args: &DurableArgs, stderr: &mut dyn Write) {
    match dir.prune(def.info.workflow, args.retention, SystemTime::now()) {
        Ok(pruned) => {
            for (run_id, state) in pruned.removed {
                let _ = writeln!(
                    stderr,
                    "agentd: removed {state} checkpoint `{run_id}` (older than {} days)",
                    args.retention_days
                );
            }
            for problem in pruned.problems {
                let _ = writeln!(stderr, "agentd: checkpoint retention: {problem}");
            }
        }
        Err(e) => {
            let _ = writeln!(stderr, "agentd: checkpoint retention skipped: {e}");
        }
    }
}

/// `--resume RUN_ID` or `--resume-incomplete`, if asked for: run it and
/// return the exit code; `None` when this invocation is an ordinary run.
///
/// # Errors
///
/// [`StartError::StateDir`] when the checkpoint cannot be continued
/// (missing, another build's, in use) or the directory cannot be listed.
pub(super) fn resume_if_asked(
    engine: &Engine<'_>,
    args: &DurableArgs,
    store: Option<&dyn Checkpoints>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Option<Result<u8, StartError>> {
    if let Some(run_id) = &args.resume {
        return Some(
            engine
                .resume(run_id, args.approval)
                .map_err(StartError::from)
                .and_then(|report| print_report(report, stdout, stderr)),
        );
    }
    if args.resume_incomplete {
        return Some(match store {
            Some(store) => resume_incomplete(engine, store, stdout, stderr),
            None => Err(StartError::Usage(format!(
                "--resume-incomplete {}",
                needs_store()
            ))),
        });
    }
    None
}

/// Resume every progress snapshot of this workflow, oldest run id first.
/// Paused runs wait for a person; runs whose lock is held are still going.
/// The exit code is the last one that was not 0 (docs/cli.md "The compiled binary", exit codes), or 0; a
/// checkpoint that cannot be read (corrupt, too large, unreadable) is named
/// and makes it 2, since a run may be lost in it.
fn resume_incomplete(
    engine: &Engine<'_>,
    store: &dyn Checkpoints,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, StartError> {
    let def = engine.def();
    let listed = store.list()?;
    let mut code = EXIT_OK;
    let mut resumed = 0_usize;
    for (run_id, loaded) in listed {
        let checkpoint = match loaded {
            Ok(checkpoint) => checkpoint,
            Err(e) => {
                // The error names the file; whose run it was cannot be known,
                // so it is never skipped silently.
                let _ = writeln!(stderr, "agentd: cannot resume `{run_id}`: {e}");
                code = EXIT_USAGE;
                continue;
            }
        };
        if checkpoint.workflow != def.info.workflow || checkpoint.awaiting_approval {
            continue;
        }
        let _ = writeln!(
            stderr,
            "agentd: resuming `{run_id}` at `{}`",
            checkpoint.resume_node.as_deref().unwrap_or("-")
        );
        let this = match engine.resume(&run_id, crate::checkpoint::Approval::Approve) {
            Ok(report) => {
                print_report(report, stdout, stderr).unwrap_or_else(|lost| lost.report(stderr))
            }
            Err(CheckpointError::Busy { .. }) => {
                let _ = writeln!(stderr, "agentd: skipping `{run_id}`: it is still running");
                continue;
            }
            // Named, and the exit code says so; the other runs still resume.
            Err(e) => StartError::from(e).report(stderr),
        };
        resumed += 1;
        if this != EXIT_OK {
            code = this;
        }
    }
    if resumed == 0 {
        let _ = writeln!(
            stderr,
            "agentd: no interrupted runs of `{}` in `{}`",
            def.info.workflow,
            store.location()
        );
    }
    Ok(code)
}

#[cfg(all(test, unix))]
mod tests;
