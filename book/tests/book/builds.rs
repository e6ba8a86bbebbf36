//! (1) The book builds with mdBook's own library, and mdBook has nothing to complain about.

use crate::util::built;

#[test]
fn the_book_builds_without_a_warning() {
    let built = built().as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        built.complaints.is_empty(),
        "mdBook built the book but complained (a missing include, a bad link, ...):\n  {}",
        built.complaints.join("\n  ")
    );
    for page in [
        "index.html",
        "introduction.html",
        "contract.html",
        "print.html",
    ] {
        assert!(
            built.html.join(page).is_file(),
            "the built book has no {page} (in {})",
            built.html.display()
        );
    }
}
