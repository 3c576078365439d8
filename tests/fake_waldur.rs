//! Tests of the fake Waldur server itself (test support for waldur-push).

mod support;

use support::fake_waldur::{FakeWaldur, Setup};

#[test]
fn starts() {
    let fake = FakeWaldur::start(Setup::small());
    assert!(fake.base_url().starts_with("http://127.0.0.1:"));
}
