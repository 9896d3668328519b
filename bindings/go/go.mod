module github.com/tinymls/tinymls/bindings/go

go 1.24
