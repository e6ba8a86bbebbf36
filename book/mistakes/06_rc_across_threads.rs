// Step 06's classic mistake: state shared with a worker thread through an `Rc`.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub fn start_worker() {
    let balances: Rc<RefCell<HashMap<String, i64>>> = Rc::default();
    let theirs = Rc::clone(&balances);
    std::thread::spawn(move || {
        *theirs.borrow_mut().entry("alice".to_string()).or_default() += 10;
    });
}
