//! Every function that C can call runs its body inside the panic boundary:
//! the exported API through `ffi_boundary!({ .. })` (the whole body, which
//! names no panic value: the body's type does), the `pthread_atfork`
//! handlers through `catch_unwind`. This test reads the sources and fails on
//! any `extern "C" fn` whose body starts otherwise, so a new export cannot
//! forget it. (That the boundary works is shown by `ffi_abi.rs`.)

use std::fs;
use std::path::Path;

/// How every exported body starts: the macro with the body as its one block.
const BOUNDARY: &str = "ffi_boundary!({";

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (function name, the first 80 characters of its body) for every
/// `extern "C" fn` definition in `src`.
fn extern_bodies(src: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find("extern \"C\" fn ") {
        let after = &rest[at + "extern \"C\" fn ".len()..];
        let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        // The body opens at the first '{' after the parameter list closes.
        let mut depth = 0i32;
        let mut body_at = None;
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                '{' if depth == 0 => {
                    body_at = Some(i + 1);
                    break;
                }
                ';' if depth == 0 => break, // a declaration, not a definition
                _ => {}
            }
        }
        if let Some(b) = body_at {
            // Skip line comments before the first statement.
            let mut body = after[b..].trim_start();
            while body.starts_with("//") {
                body = body.split_once('\n').map_or("", |(_, r)| r).trim_start();
            }
            let body: String = body.chars().take(80).collect();
            found.push((name, body));
        }
        rest = after;
    }
    found
}

#[test]
fn every_extern_c_body_is_inside_the_panic_boundary() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut exported = 0;
    let mut handlers = 0;
    let mut bad = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for (name, body) in extern_bodies(&text) {
            if body.starts_with(BOUNDARY) {
                exported += 1;
            } else if body.starts_with("let _ = std::panic::catch_unwind(") {
                handlers += 1;
            } else {
                bad.push(format!("{}: {name}: body starts with {body:?}", file.display()));
            }
        }
    }
    assert!(bad.is_empty(), "extern \"C\" functions outside the panic boundary:\n{}", bad.join("\n"));
    // The header declares 17 functions plus tinymls_test_panic (feature
    // test-hooks, compiled out of a release but present in the source).
    assert!(exported >= 18, "found only {exported} exported bodies: is the scan broken?");
    assert_eq!(handlers, 3, "the three pthread_atfork handlers");
}

#[test]
fn the_scan_catches_a_body_outside_the_boundary() {
    let src = r#"
        pub extern "C" fn good(a: *const u8) -> u32 {
            // A comment first is fine.
            ffi_boundary!({ 0 })
        }
        pub extern "C" fn bad(a: *const u8) -> u32 { 0 }
        pub extern "C" fn late(a: *const u8) -> u32 { let x = 1; ffi_boundary!({ x }) }
        pub extern "C" fn old_form(a: *const u8) -> u32 { ffi_boundary!(1, { 0 }) }
    "#;
    let found = extern_bodies(src);
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["good", "bad", "late", "old_form"]);
    let inside: Vec<bool> = found.iter().map(|(_, b)| b.starts_with(BOUNDARY)).collect();
    assert_eq!(inside, [true, false, false, false]);
}
