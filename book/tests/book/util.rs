//! Paths, the chapters' text, and the book built once (in-process, with mdBook's library).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use mdbook_driver::MDBook;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// `cargo build -q -p PACKAGE` in the workspace, then the path of its debug executable.
pub fn built_exe(package: &str) -> Result<PathBuf, String> {
    let built = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", package])
        .current_dir(root())
        .status()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !built.success() {
        return Err(format!("{package} does not build"));
    }
    Ok(std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("debug")
        .join(package))
}

/// A TOML file of the book's folder (`samples.toml`, `diagrams/steps.toml`), read into `T`.
pub fn book_toml<T: serde::de::DeserializeOwned>(rel: &str) -> T {
    let path = book_dir().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether to rewrite the files a test compares with (`BLESS=1`), rather than compare.
pub fn blessing() -> bool {
    std::env::var_os("BLESS").is_some()
}

/// Fails with `problems`, naming the command that rewrites the files of the test `module`.
pub fn assert_blessed(problems: &[String], module: &str) {
    assert!(
        problems.is_empty(),
        "{}\n(rewrite the files with BLESS=1 cargo test -p eventkit-book --test book {module})",
        problems.join("\n")
    );
}

/// `book/`, where `book.toml` is.
pub fn book_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `book/src/`, the Markdown.
pub fn src_dir() -> PathBuf {
    book_dir().join("src")
}

/// The workspace root.
pub fn root() -> PathBuf {
    book_dir()
        .parent()
        .expect("book/ sits in the workspace root")
        .to_path_buf()
}

/// Every chapter: (file name, text), in file-name order.
pub fn chapters() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(src_dir())
        .expect("book/src exists")
        .map(|e| e.expect("readable book/src").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    out.sort();
    out
}

/// What building the book gave: the HTML folder, and every warning or error mdBook logged.
pub struct Built {
    pub html: PathBuf,
    pub complaints: Vec<String>,
}

/// Builds the book once per test run, into a folder under cargo's target directory.
pub fn built() -> &'static Result<Built, String> {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        build_into(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("eventkit-book"))
    })
}

/// Builds the book into `dest` with mdBook's library, collecting what it logs at WARN or
/// ERROR (a missing include, for one, is only logged).
pub fn build_into(dest: &Path) -> Result<Built, String> {
    let _ = std::fs::remove_dir_all(dest);
    let collector = Collector::default();
    let result = tracing::subscriber::with_default(collector.clone(), || -> Result<(), String> {
        let mut book = MDBook::load(book_dir()).map_err(|e| format!("loading the book: {e:#}"))?;
        book.config.build.build_dir = dest.to_path_buf();
        book.build()
            .map_err(|e| format!("building the book: {e:#}"))
    });
    result?;
    let complaints = collector.0.lock().unwrap().clone();
    // The HTML renderer writes into the build folder itself when it is the only renderer.
    let html = if dest.join("html").is_dir() {
        dest.join("html")
    } else {
        dest.to_path_buf()
    };
    Ok(Built { html, complaints })
}

/// A tracing subscriber that keeps the WARN and ERROR events, as text.
#[derive(Clone, Default)]
struct Collector(std::sync::Arc<Mutex<Vec<String>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        } else {
            self.0.push_str(&format!("{}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Collector {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Levels order from ERROR (lowest) to TRACE: this keeps ERROR and WARN.
        *metadata.level() <= Level::WARN
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.lock().unwrap().push(format!(
            "{} {}: {}",
            event.metadata().level(),
            event.metadata().target(),
            message.0
        ));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
