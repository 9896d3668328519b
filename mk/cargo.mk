# Cargo for the test builds, the same way for every Makefile that builds
# Rust code in target/testhooks or target/rustcrypto (include it after
# setting CARGO).
#
# Everything built in target/testhooks and target/rustcrypto (the test
# library, the Rust test binaries, the examples the tests run) uses the
# release profile without its link-time optimisation: thin LTO of two dozen
# test binaries made their build the longest step of `make test` on a fresh
# clone: 180 s with it (aws-lc already built by clippy), 103 s without
# (aws-lc's own build included). The code is the same, optimised the same way;
# only cross-crate inlining at link time differs. What ships is built with
# LTO (`make lib`, `make install`, the wheel, the Go dist module, FIPS=1),
# and `make test` runs that build too: test-symbols, test-demo,
# test-quickstart, test-install, test-dist-go, the FIPS interop.
TEST_CARGO := CARGO_PROFILE_RELEASE_LTO=false $(CARGO)
