//! The book's tests: it builds, its links and anchors resolve, its includes point at code that
//! exists, its Rust snippets are either compiled (as doctests, see `doctest/build.rs`) or say why
//! not, every `checker` command it shows is one the checker accepts, every step of
//! `checker/steps.toml` has its chapter, and every chapter its graph. One test binary, one module per concern.

#[path = "../../doctest/markdown.rs"]
mod markdown;

// Where things are, and the book built once for every test that needs the HTML.
mod util;

// (1) The book builds with mdBook, without a warning.
mod builds;
// (2) Every internal link and `#anchor` of the built HTML resolves.
mod links;
// (3) Every `{{#include path:anchor}}` names a file that exists and an anchor in it.
mod includes;
// (4) Every Rust code block is compiled (doctest) or marked `ignore` with a reason.
mod snippets;
// (5) Every `checker ...` command the book shows exists, with the flags it shows.
mod commands;
// (6) The compiler errors the chapters show are what rustc says of `mistakes/*.rs`.
mod mistakes;
// (7) Every chapter shows a picture of what runs where, drawn from `diagrams/steps.toml`.
mod diagrams;
// (8) Every checker output the book shows is a sample of `samples.toml`, and has its shape still.
mod samples;
// The ten chapters follow `checker/steps.toml` and `checker/skeletons.toml`.
mod chapters;
// Every chapter shows its graph from `checker bench`, and every graph names its machine.
mod graphs;
