//! Feeds arbitrary bytes to the page decoder. Whatever the input, decoding must return a value
//! or an error, never panic or read out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nq_storage::{PageType, decode_verified, inspect_page};

fuzz_target!(|data: &[u8]| {
    // Pad or cut the input to a real page size so the node parser is reached.
    let mut page = vec![0u8; 4096];
    let n = data.len().min(page.len());
    page[..n].copy_from_slice(&data[..n]);
    let id = 3;
    let _ = inspect_page(&page, id);
    // Bypass the checksum: the parser must be safe on its own.
    for kind in [
        PageType::Meta,
        PageType::Leaf,
        PageType::Internal,
        PageType::Free,
        PageType::Overflow,
    ] {
        let _ = decode_verified(&page, id, kind);
    }
    // Any length, including ones that are not page sizes.
    let _ = inspect_page(data, id);
});
