//! The eventkit book's Rust snippets, as doctests.
//!
//! `doctest/build.rs` copies every Rust code block of `book/src/*.md` that is not an
//! `{{#include}}` of a solution into one module per block, so that `cargo test` compiles (and,
//! unless marked `no_run`, runs) each one exactly as the book shows it. Blocks marked
//! `compile_fail` must fail to compile; blocks marked `ignore` are checked by the book's tests
//! to carry a reason.

include!(concat!(env!("OUT_DIR"), "/snippets.rs"));
