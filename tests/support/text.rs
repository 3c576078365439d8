//! Assertions on the text a tool printed, showing the whole text when they fail.

/// Asserts that `text` holds `part`.
#[track_caller]
pub fn assert_contains(text: &str, part: &str) {
    assert!(text.contains(part), "{text}");
}

/// Asserts that `text` does not hold `part`.
#[track_caller]
pub fn assert_lacks(text: &str, part: &str) {
    assert!(!text.contains(part), "{text}");
}
