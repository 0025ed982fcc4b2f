// SPDX-License-Identifier: MIT
//! The load-time contract check: the library must implement every ABI item
//! this crate was generated from, with the same signature.
//!
//! Linking alone does not catch a library whose `whsem_open` takes other
//! arguments (symbol names carry no types in C), and such a mismatch would
//! otherwise show up as memory corruption. A library that only *added*
//! items is fine: only the items of [`sys::ABI_CHECKSUMS`] are looked at.

use std::ffi::{CStr, CString};
use std::sync::OnceLock;

use crate::error::{Error, ErrorKind};
use crate::sys;

/// Ok once the linked library has been found to match; the error (the same
/// on every call) otherwise. Cheap after the first call: one atomic load.
pub(crate) fn ensure() -> Result<(), Error> {
    static RESULT: OnceLock<Result<(), Error>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            compare(
                sys::ABI_CHECKSUMS,
                sys::ABI_VERSION,
                &crate::library_version(),
                |item| {
                    // Items are plain ASCII identifiers from the generator.
                    let item = CString::new(item).expect("ABI item names contain no NUL");
                    // SAFETY: a valid NUL-terminated string; the call only reads it.
                    unsafe { sys::whsem_abi_checksum(item.as_ptr()) }
                },
            )
        })
        .clone()
}

/// Compares the checksums this crate expects (`wanted`) with what the
/// library reports through `library`; 0 from the library means it does not
/// know the item.
pub(crate) fn compare(
    wanted: &[(&str, u32)],
    abi_version: &str,
    library_version: &str,
    library: impl Fn(&str) -> u32,
) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut different = Vec::new();
    for &(item, checksum) in wanted {
        match library(item) {
            0 => missing.push(item),
            theirs if theirs != checksum => different.push(item),
            _ => {}
        }
    }
    if missing.is_empty() && different.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "libwhsem {library_version} lacks {} that this binding (ABI {abi_version}) needs",
            missing.join(", ")
        ));
    }
    if !different.is_empty() {
        problems.push(format!(
            "signature mismatch: libwhsem {library_version} implements {} differently from \
             this binding (ABI {abi_version})",
            different.join(", ")
        ));
    }
    Err(Error::new(
        ErrorKind::LibraryMismatch,
        sys::WHSEM_E_INCOMPATIBLE,
        problems.join("; "),
    ))
}

/// The library's version text, e.g. "1.0.0".
pub(crate) fn version_string() -> String {
    // SAFETY: static storage, never NULL.
    unsafe { CStr::from_ptr(sys::whsem_version_string()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const OURS: &[(&str, u32)] = &[("whsem_open", 0x1111), ("struct whsem_info", 0x2222)];

    fn library(items: &[(&'static str, u32)]) -> impl Fn(&str) -> u32 {
        let map: HashMap<&str, u32> = items.iter().copied().collect();
        move |item| map.get(item).copied().unwrap_or(0)
    }

    #[test]
    fn identical_library_passes() {
        assert!(compare(OURS, "1.0", "1.0.0", library(OURS)).is_ok());
    }

    #[test]
    fn newer_library_with_more_items_passes() {
        let newer = [
            ("whsem_open", 0x1111),
            ("struct whsem_info", 0x2222),
            ("whsem_new_thing", 0x3333),
        ];
        assert!(compare(OURS, "1.0", "1.1.0", library(&newer)).is_ok());
    }

    #[test]
    fn older_library_lacking_an_item_is_named() {
        let older = [("whsem_open", 0x1111)];
        let err = compare(OURS, "1.0", "0.9.0", library(&older)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LibraryMismatch);
        assert_eq!(err.status(), sys::WHSEM_E_INCOMPATIBLE);
        assert_eq!(
            err.message(),
            "libwhsem 0.9.0 lacks struct whsem_info that this binding (ABI 1.0) needs"
        );
    }

    #[test]
    fn changed_signature_is_a_mismatch() {
        let changed = [("whsem_open", 0x9999), ("struct whsem_info", 0x2222)];
        let err = compare(OURS, "1.0", "1.0.1", library(&changed)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LibraryMismatch);
        assert!(err.message().contains("signature mismatch"), "{err}");
        assert!(err.message().contains("whsem_open"), "{err}");
        assert!(!err.message().contains("whsem_info"), "{err}");
    }

    #[test]
    fn both_problems_are_reported() {
        let broken = [("whsem_open", 0x9999)];
        let err = compare(OURS, "1.0", "1.0.1", library(&broken)).unwrap_err();
        assert!(err.message().contains("lacks struct whsem_info"), "{err}");
        assert!(err.message().contains("signature mismatch"), "{err}");
    }

    #[test]
    fn the_linked_library_matches_this_binding() {
        ensure().expect("the library under test implements the ABI this crate was generated from");
        // The real lookup knows the items and reports the generated values.
        for &(item, checksum) in sys::ABI_CHECKSUMS {
            let c = CString::new(item).unwrap();
            assert_eq!(
                unsafe { sys::whsem_abi_checksum(c.as_ptr()) },
                checksum,
                "{item}"
            );
        }
    }
}
