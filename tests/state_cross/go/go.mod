module statecross

go 1.24

require github.com/tinymls/tinymls/bindings/go v0.0.0

replace github.com/tinymls/tinymls/bindings/go => ../../../bindings/go
