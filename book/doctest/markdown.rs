//! The little Markdown reading the book's build script and tests share: fenced code blocks and
//! inline code spans. (Shared by path: `doctest/build.rs` and `tests/book/main.rs` both say
//! `#[path = ".../markdown.rs"] mod markdown;`.)

#![allow(dead_code)]

/// A fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The info string after the opening fence: `rust,no_run`, `text`, `sh`, or empty.
    pub info: String,
    /// The lines between the fences, the fence's indentation removed, each ending in `\n`.
    pub body: String,
    /// The line of the opening fence, 1-based.
    pub line: usize,
    /// The nearest non-blank line before the opening fence (a reason comment, say).
    pub before: String,
}

impl Block {
    /// The language: the first word of the info string, or "" when there is none.
    pub fn lang(&self) -> &str {
        self.info
            .split([',', ' '])
            .map(str::trim)
            .find(|w| !w.is_empty())
            .unwrap_or("")
    }

    /// The words of the info string after the language (`no_run`, `ignore`, ...).
    pub fn attrs(&self) -> Vec<&str> {
        self.info
            .split([',', ' '])
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .skip(1)
            .collect()
    }

    /// True for a block that rustdoc and mdBook read as Rust: `rust...`, or no language at all.
    pub fn is_rust(&self) -> bool {
        matches!(self.lang(), "rust" | "")
    }

    /// True when the block pulls code in with mdBook's `{{#include}}` (or `{{#rustdoc_include}}`).
    pub fn is_include(&self) -> bool {
        self.body.contains("{{#")
    }
}

/// Every fenced code block of a Markdown text, indented ones (in lists) included.
pub fn code_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String, Block)> = None;
    let mut last_text = String::new();
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                let ticks = trimmed.len() - trimmed.trim_start_matches('`').len();
                if ticks >= 3 {
                    let block = Block {
                        info: trimmed[ticks..].trim().to_string(),
                        body: String::new(),
                        line: i + 1,
                        before: last_text.clone(),
                    };
                    open = Some((indent, "`".repeat(ticks), block));
                } else if !trimmed.is_empty() {
                    last_text = trimmed.to_string();
                }
            }
            Some((fence_indent, fence, block)) => {
                if trimmed.starts_with(fence.as_str()) && trimmed.trim_end_matches('`').is_empty() {
                    blocks.push(open.take().unwrap().2);
                    last_text.clear();
                    continue;
                }
                let cut = indent.min(*fence_indent);
                block.body.push_str(&line[cut..]);
                block.body.push('\n');
            }
        }
    }
    blocks
}

/// The text outside fenced code blocks, line by line, with 1-based line numbers.
pub fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let ticks = trimmed.len() - trimmed.trim_start_matches('`').len();
        match &fence {
            None if ticks >= 3 => fence = Some("`".repeat(ticks)),
            None => out.push((i + 1, line)),
            Some(f)
                if trimmed.starts_with(f.as_str()) && trimmed.trim_end_matches('`').is_empty() =>
            {
                fence = None
            }
            Some(_) => {}
        }
    }
    out
}

/// The inline code spans of one line of prose: `` `like this` `` (single backticks, or double
/// for spans that hold a backtick).
pub fn code_spans(line: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let after = &rest[start..];
        let ticks = after.len() - after.trim_start_matches('`').len();
        let fence = &after[..ticks];
        let inner = &after[ticks..];
        match inner.find(fence) {
            Some(end) => {
                spans.push(inner[..end].trim());
                rest = &inner[end + ticks..];
            }
            None => break,
        }
    }
    spans
}
