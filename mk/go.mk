# Go, the same way for every Makefile that builds Go code (include it after
# setting REPO to the top of the repository): cgo on, the installed toolchain
# (go.mod needs Go 1.24+; nothing is downloaded), no VCS stamping. The Go
# caches live under $HOME by default; when HOME is unset, missing or not
# writable (a bare root shell, a sandbox) and the user chose no cache, they
# go under build/go/. The user's own settings win.

GO    ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOFMT ?= $(shell command -v gofmt 2>/dev/null || echo $(dir $(GO))gofmt)

export CGO_ENABLED := 1
export GOTOOLCHAIN ?= local
export GOFLAGS ?= -buildvcs=false

GO_HOME_OK := $(shell [ -n "$$HOME" ] && [ -d "$$HOME" ] && [ -w "$$HOME" ] && echo ok)
GO_XDG_OK  := $(shell [ -n "$$XDG_CACHE_HOME" ] && [ -d "$$XDG_CACHE_HOME" ] && [ -w "$$XDG_CACHE_HOME" ] && echo ok)
ifeq ($(GOCACHE)$(GO_XDG_OK)$(GO_HOME_OK),)
export GOCACHE := $(REPO)/build/go/cache
endif
ifeq ($(GOPATH)$(GOMODCACHE)$(GO_HOME_OK),)
export GOPATH := $(REPO)/build/go/gopath
endif
ifeq ($(XDG_CONFIG_HOME)$(GO_HOME_OK),)
# Go's own settings and telemetry files (os.UserConfigDir).
export XDG_CONFIG_HOME := $(REPO)/build/go/config
endif
