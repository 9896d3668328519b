// Gives the shared library its SONAME (libtinymls.so.<major>), so that programs
// linked against it keep working across compatible (same-major) upgrades.
fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "freebsd" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtinymls.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
