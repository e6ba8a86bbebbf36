//! (4) Every Rust code block of the chapters is one of:
//! - an `{{#include}}` of solution code, and nothing else (that code is compiled where it lives);
//! - a snippet that `cargo test` compiles as a doctest (`doctest/build.rs` turns each one into a
//!   doctest of this crate: `no_run` ones are compiled, `compile_fail` ones must fail to compile,
//!   the rest are compiled and run);
//! - marked `ignore`, right after a line `<!-- not compiled: REASON -->` that says why.
//!
//! Every code block names its language (an unmarked block is Rust to rustdoc, which is rarely
//! what a transcript wants), and a block marked `text` that looks like Rust needs the same reason
//! line as an ignored one.

use regex::Regex;

use crate::markdown::{code_blocks, Block};
use crate::util::chapters;

/// The reason line an uncompiled snippet needs just before its fence.
fn reason(block: &Block) -> Option<&str> {
    let r = block
        .before
        .strip_prefix("<!-- not compiled:")?
        .strip_suffix("-->")?
        .trim();
    (!r.is_empty()).then_some(r)
}

/// What is wrong with the code blocks of one chapter.
pub fn snippet_problems(file: &str, text: &str) -> Vec<String> {
    let rusty =
        Regex::new(r"(?m)^\s*(pub\s+)?(fn|let|impl|use|struct|enum|async fn|match)\b.*[;{(]")
            .unwrap();
    let mut problems = Vec::new();
    for block in code_blocks(text) {
        let at = format!("{file}:{}", block.line);
        if block.lang().is_empty() {
            problems.push(format!(
                "{at}: a code block without a language (```text, ```sh, ```rust, ...)"
            ));
            continue;
        }
        if block.is_rust() && block.is_include() {
            let other = block
                .body
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("{{#"))
                .count();
            if other > 0 {
                problems.push(format!(
                    "{at}: a block that includes solution code holds other code too"
                ));
            }
            continue;
        }
        let ignored = block.is_rust() && block.attrs().contains(&"ignore");
        let rust_as_text = block.lang() == "text" && rusty.is_match(&block.body);
        if (ignored || rust_as_text) && reason(&block).is_none() {
            problems.push(format!(
                "{at}: Rust that is not compiled needs a line `<!-- not compiled: REASON -->` right before its fence"
            ));
        }
    }
    problems
}

#[test]
fn every_rust_block_is_compiled_or_says_why_not() {
    let mut problems = Vec::new();
    for (file, text) in chapters() {
        problems.extend(snippet_problems(&file, &text));
    }
    assert!(
        problems.is_empty(),
        "code blocks to fix:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn an_uncompiled_snippet_without_a_reason_is_caught() {
    let text = "```\nplain\n```\n\
                ```rust,ignore\nfn main() {}\n```\n\
                <!-- not compiled: it needs a server -->\n```rust,ignore\nfn main() {}\n```\n\
                ```text\nlet x = f();\n```\n\
                ```rust\n{{#include ../../solutions/a.rs:x}}\nfn extra() {}\n```\n\
                ```text\n$ nc 127.0.0.1 7878\n```\n";
    let problems = snippet_problems("x.md", text);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].contains("without a language"));
    assert!(problems[1].contains("x.md:4"), "{problems:#?}");
    assert!(problems[2].contains("x.md:11"), "{problems:#?}");
    assert!(problems[3].contains("other code too"));
}
