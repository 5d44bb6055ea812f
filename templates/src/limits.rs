//! Size limits every render obeys: [`MAX_OUTPUT_BYTES`] and [`MAX_LIST_LEN`].
//!
//! A leaf module (it names nothing else of this crate), so the engine and the function
//! library use the limits without depending on the crate root, which re-exports them.

/// Largest string a single render (or a single function call inside it) may produce.
pub const MAX_OUTPUT_BYTES: usize = 10 * 1024 * 1024;
/// Largest list a template function may build (`until`, `seq`, `concat`, ...).
pub const MAX_LIST_LEN: usize = 1_000_000;
