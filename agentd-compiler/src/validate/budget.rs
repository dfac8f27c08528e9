//! `[budget]` checks (ours, docs/dialect.md §15): `budget_out_of_range` for a size in MiB
//! whose byte count does not fit in 64 bits (`max_memory_mb`, `max_fs_write_mb`).
//! Dialect 1 accepted such a value and then either refused to start
//! (`max_memory_mb`) or silently capped it; here it is a build error. Every other
//! budget key is a whole number of seconds or tokens that the runtime uses as is, and
//! `0` means "no limit" for every key (see docs/dialect.md).

use super::Validator;
use crate::codes::Code;
use crate::diagnostics::Diagnostic;
use crate::loc;

/// One MiB, the unit of the `*_mb` keys.
const MIB: u64 = 1024 * 1024;

impl Validator<'_> {
    pub(super) fn check_budget(&mut self) {
        let Some(b) = self.doc.budget.as_ref() else {
            return;
        };
        for (key, value) in [
            ("max_memory_mb", b.max_memory_mb),
            ("max_fs_write_mb", b.max_fs_write_mb),
        ] {
            let Some(mb) = value else { continue };
            if mb.checked_mul(MIB).is_some() {
                continue;
            }
            let d = Diagnostic::new(
                Code::BudgetOutOfRange,
                self.path(),
                format!("[budget].{key} = {mb} MiB is more bytes than fit in 64 bits"),
            )
            .with_span(self.span(loc!["budget", key]))
            .with_label(format!("at most {} MiB", u64::MAX / MIB))
            .with_help(format!(
                "set a real limit in MiB, or `{key} = 0` (or leave it out) for no limit"
            ));
            self.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::codes::Code;
    use crate::parse::parse_str;
    use crate::validate::{ValidateOptions, validate};

    fn spans(budget: &str) -> Vec<String> {
        let text = format!(
            "name = \"t\"\n[policy]\n[budget]\n{budget}\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n"
        );
        let r = parse_str(Path::new("wf.toml"), &text);
        let doc = r.doc.unwrap_or_else(|| panic!("{:?}", r.diagnostics));
        validate(&r.source, &doc, &ValidateOptions::default())
            .iter()
            .filter(|d| d.code == Code::BudgetOutOfRange)
            .map(|d| text[d.span.clone().expect("a span")].to_string())
            .collect()
    }

    #[test]
    fn sizes_whose_bytes_overflow_64_bits_are_errors() {
        assert_eq!(spans("max_memory_mb = 17592186044416"), ["17592186044416"]);
        assert_eq!(
            spans("max_fs_write_mb = 9223372036854775807"),
            ["9223372036854775807"]
        );
        assert!(spans("max_memory_mb = 17592186044415\nmax_fs_write_mb = 0").is_empty());
        assert!(spans("max_cpu_secs = 9223372036854775807\nmax_llm_tokens = 0").is_empty());
    }
}
