//! `agentd init`: a new workflow project from a template.
//!
//! Owns the templates (embedded from `templates/init/`, so the binary needs no
//! source tree) and writing them out: the workflow (and children), test scenarios,
//! a README and a CI file, with the project's name filled in. Never overwrites a
//! file: the target directory must be absent or empty.

use std::path::{Path, PathBuf};

/// The error type of this module.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("unknown template `{0}` (templates: {list})", list = names().join(", "))]
    UnknownTemplate(String),
    #[error("`{0}` exists and is not an empty directory; agentd init never overwrites files")]
    NotEmpty(PathBuf),
    #[error("cannot write `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One project template.
#[derive(Debug)]
pub struct Template {
    pub name: &'static str,
    pub summary: &'static str,
    /// Arguments for the binary in the README's `agentd run` line.
    pub run_args: &'static str,
    /// Files relative to the project directory, with `__NAME__` for the project name.
    pub files: &'static [(&'static str, &'static str)],
}

macro_rules! file {
    ($template:literal, $path:literal) => {
        (
            $path,
            include_str!(concat!("../../../templates/init/", $template, "/", $path)),
        )
    };
}

/// Every template, the default first.
pub static TEMPLATES: &[Template] = &[
    Template {
        name: "hello",
        summary: "greet whoever the input names (pure data, no effects)",
        run_args: "--input '{\"name\": \"Ada\"}'",
        files: &[
            file!("hello", "workflow.toml"),
            file!("hello", "tests/greet.toml"),
        ],
    },
    Template {
        name: "webhook",
        summary: "an HTTP route with bearer auth and a rate limit that answers with JSON",
        run_args: "--bind 127.0.0.1:8080",
        files: &[
            file!("webhook", "workflow.toml"),
            file!("webhook", "tests/event.toml"),
            file!("webhook", "tests/missing-event.toml"),
        ],
    },
    Template {
        name: "llm-classifier",
        summary: "classify text with an LLM (JSON reply) and route on the label",
        run_args: "--input '{\"body\": \"Invoice #42: 120 EUR due\"}'",
        files: &[
            file!("llm-classifier", "workflow.toml"),
            file!("llm-classifier", "tests/invoice.toml"),
            file!("llm-classifier", "tests/unknown-label.toml"),
        ],
    },
    Template {
        name: "approval",
        summary: "pause large orders for a person (pause_for_approval, resume)",
        run_args: "--input '{\"size\": \"small\"}'",
        files: &[
            file!("approval", "workflow.toml"),
            file!("approval", "tests/small.toml"),
            file!("approval", "tests/large.toml"),
        ],
    },
    Template {
        name: "map",
        summary: "run a child workflow once per element of a list",
        run_args: "--input '{\"items\": [{\"title\": \"Fix login\"}]}'",
        files: &[
            file!("map", "workflow.toml"),
            file!("map", "item.toml"),
            file!("map", "tests/items.toml"),
            file!("map", "tests/not-a-list.toml"),
        ],
    },
];

const README: &str = include_str!("../../../templates/init/README.md.in");
const CI: &str = include_str!("../../../templates/init/ci.yml.in");

/// The template names, in order.
pub fn names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|t| t.name).collect()
}

/// Look a template up by name.
pub fn template(name: &str) -> Result<&'static Template, InitError> {
    TEMPLATES
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| InitError::UnknownTemplate(name.to_string()))
}

/// The workflow name for a project directory: its last component, lower-cased, with
/// every character other than ASCII letters, digits and `_` turned into `_`.
pub fn project_name(dir: &Path) -> String {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "workflow_");
    }
    name
}

/// Write `template` into `dir` (created when absent; must be empty when present).
/// Returns the files written, relative to `dir`.
pub fn create(dir: &Path, template: &Template) -> Result<Vec<PathBuf>, InitError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InitError::Io { path, source }
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(InitError::NotEmpty(dir.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(InitError::NotEmpty(dir.to_path_buf()));
        }
        Err(e) => return Err(io(dir)(e)),
    }
    let name = project_name(dir);
    let fill = |text: &str| {
        text.replace("__NAME__", &name)
            .replace("__TEMPLATE__", template.name)
            .replace("__RUN_ARGS__", template.run_args)
    };
    let description = template
        .files
        .iter()
        .find(|(p, _)| *p == "workflow.toml")
        .and_then(|(_, text)| {
            text.lines()
                .find_map(|l| l.strip_prefix("description = \""))
                .and_then(|d| d.strip_suffix('"'))
        })
        .unwrap_or(template.summary);
    let mut files: Vec<(PathBuf, String)> = template
        .files
        .iter()
        .map(|(p, text)| (PathBuf::from(p), fill(text)))
        .collect();
    files.push((
        PathBuf::from("README.md"),
        fill(&README.replace("__DESCRIPTION__", description)),
    ));
    files.push((PathBuf::from(".github/workflows/agentd.yml"), fill(CI)));
    files.push((PathBuf::from(".gitignore"), format!("/{name}\n")));
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        // `create_new`: a file that appeared meanwhile is never replaced.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(io(&path))?;
        written.push(rel);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_checks_clean_with_no_warnings() {
        for t in TEMPLATES {
            let dir = std::env::temp_dir().join(format!(
                "agentd-init-unit-{}-{}",
                t.name,
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let files = create(&dir, t).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert!(files.iter().any(|f| f.ends_with("README.md")));
            let program = crate::load::load(
                &dir.join("workflow.toml"),
                &crate::load::LoadOptions::default(),
            );
            assert!(
                program.diagnostics.is_empty(),
                "{}: {:?}",
                t.name,
                program.diagnostics
            );
            let readme = std::fs::read_to_string(dir.join("README.md")).expect("readme");
            assert!(!readme.contains("__"), "{}: unfilled placeholder", t.name);
            // A second init into the same directory refuses.
            assert!(matches!(create(&dir, t), Err(InitError::NotEmpty(_))));
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn project_names_are_valid_workflow_names() {
        assert_eq!(project_name(Path::new("/x/My Flow-2")), "my_flow_2");
        assert_eq!(project_name(Path::new("3d")), "workflow_3d");
        assert!(matches!(
            template("nope"),
            Err(InitError::UnknownTemplate(_))
        ));
    }
}
