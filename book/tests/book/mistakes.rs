//! (6) The compiler errors the chapters show are the compiler's own. Each `mistakes/NN_name.rs`
//! is a step's classic mistake, small enough to compile with `rustc` alone (std only; where the
//! mistake is about `tokio::spawn`, a stand-in with its bounds). Its error, as rustc prints it,
//! is kept beside it in `NN_name.stderr`, which the chapter includes.
//!
//! With the rustc that wrote the `.stderr` files (`mistakes/rustc-version`), the text must be
//! the same to the byte. With another rustc the wording may have moved on, so only the error
//! lines themselves (`error[E0382]: borrow of moved value: ...`) must be the same; rewrite the
//! files with `BLESS=1 cargo test -p eventkit-book --test book mistakes`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{assert_blessed, blessing, book_dir, chapters};

fn mistakes_dir() -> PathBuf {
    book_dir().join("mistakes")
}

/// The mistakes, by file name, in order.
fn mistakes() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(mistakes_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.ends_with(".rs").then_some(name)
        })
        .collect();
    names.sort();
    names
}

/// The rustc of the toolchain running the tests: `RUSTC`, or the one beside cargo.
fn rustc() -> PathBuf {
    if let Some(rustc) = std::env::var_os("RUSTC") {
        return rustc.into();
    }
    let beside = Path::new(env!("CARGO")).with_file_name("rustc");
    if beside.is_file() {
        beside
    } else {
        "rustc".into()
    }
}

/// `rustc -vV`'s `release:` line: the version whose wording the files hold.
fn rustc_release() -> String {
    let out = Command::new(rustc()).arg("-vV").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .unwrap_or("unknown")
        .to_string()
}

/// What rustc says about `name`, run from the mistakes folder so that it names the file alone.
/// The standard library's own paths hold the toolchain's commit: that part is left out.
fn compile(name: &str, out_dir: &Path) -> (bool, String) {
    let out = Command::new(rustc())
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "lib",
            "--emit",
            "metadata",
        ])
        .args(["--color", "never", "--out-dir"])
        .arg(out_dir)
        .arg(name)
        .current_dir(mistakes_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let commit = regex::Regex::new(r"/rustc/[0-9a-f]{40}/").unwrap();
    (
        out.status.success(),
        commit.replace_all(&text, "/rustc/COMMIT/").into_owned(),
    )
}

fn error_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("error") && !l.starts_with("error: aborting"))
        .collect()
}

#[test]
fn every_mistake_fails_to_compile_with_the_error_its_chapter_shows() {
    let out_dir = std::env::temp_dir().join(format!("eventkit-mistakes-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let bless = blessing();
    let version_file = mistakes_dir().join("rustc-version");
    let release = rustc_release();
    let same_rustc = std::fs::read_to_string(&version_file)
        .map(|v| v.trim() == release)
        .unwrap_or(false);
    let mut problems = Vec::new();
    let names = mistakes();
    assert!(names.len() >= 5, "the mistakes are missing: {names:?}");
    for name in &names {
        let (compiled, said) = compile(name, &out_dir);
        if compiled {
            problems.push(format!("{name} compiles: it is no mistake"));
            continue;
        }
        let kept = mistakes_dir().join(name.replace(".rs", ".stderr"));
        if bless {
            std::fs::write(&kept, &said).unwrap();
            continue;
        }
        let shown = std::fs::read_to_string(&kept).unwrap_or_default();
        if same_rustc && shown != said {
            problems.push(format!(
                "{} is not what rustc {release} says now:\n{said}",
                kept.display()
            ));
        } else if error_lines(&shown) != error_lines(&said) {
            problems.push(format!(
                "{}: rustc {release} names other errors: {:?}, not {:?}",
                kept.display(),
                error_lines(&said),
                error_lines(&shown)
            ));
        }
    }
    if bless {
        std::fs::write(&version_file, format!("{release}\n")).unwrap();
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    assert_blessed(&problems, "mistakes");
}

#[test]
fn every_mistake_is_shown_by_its_chapter_with_its_error() {
    let pages = chapters();
    let mut problems = Vec::new();
    for name in mistakes() {
        let step = &name[..2];
        let Some((page, text)) = pages.iter().find(|(p, _)| p.starts_with(step)) else {
            problems.push(format!("{name}: no chapter {step}"));
            continue;
        };
        for shown in [name.clone(), name.replace(".rs", ".stderr")] {
            if !text.contains(&format!("{{{{#include ../mistakes/{shown}}}}}")) {
                problems.push(format!("{page} does not include mistakes/{shown}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
