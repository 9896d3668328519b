//go:build tinymls_includebuild

package tinymls

// Never built. `go mod vendor` copies only the directories of packages that
// are imported (golang.org/issue/26366), so this file of the dist module
// (make dist-go) imports the directories that hold the header and the
// archives, each made a package by an empty.go: vendoring keeps them. As
// wasmtime-go's includebuild.go.

import (
	_ "github.com/tinymls/tinymls/bindings/go/include"
	_ "github.com/tinymls/tinymls/bindings/go/lib/linux-amd64"
	_ "github.com/tinymls/tinymls/bindings/go/lib/linux-arm64"
)
